import Foundation
import KVKitTestSupport
import Testing

/// Runs the built `kvkit` executable as a user would.
/// With `stdout`, the command's standard output goes there (e.g. /dev/full) instead of a pipe.
func runKVKit(_ args: [String], env: [String: String] = [:], stdout: FileHandle? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    var dir = URL(fileURLWithPath: #filePath)
    while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { dir.deleteLastPathComponent() }
    let candidates = [".build/release/kvkit", ".build/debug/kvkit"].map { dir.appendingPathComponent($0).path }
    guard let exe = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw TestSupport.Failure("kvkit is not built; run 'swift build -c release'")
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
    let out = Pipe(), err = Pipe()
    p.standardOutput = stdout ?? out
    p.standardError = err
    try p.run()
    try? out.fileHandleForWriting.close()
    let o = stdout == nil ? out.fileHandleForReading.readDataToEndOfFile() : Data()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

@Suite(.serialized) struct GenerateCommandTests {
    @Test func answersThePasskeyPrompt() throws {
        // The passkey1000 reference prompt's user turn, sent through the chat template by `kvkit generate`.
        let text = try TestSupport.anchors()["passkey1000"]!.text!
        let user = text.components(separatedBy: "<|im_start|>user\n")[1].components(separatedBy: "<|im_end|>")[0]
        let r = try runKVKit(["generate", "--prompt", user, "--max-tokens", "24"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("68259"), "answer: \(r.stdout)")
        #expect(r.stderr.contains("prefill") && r.stderr.contains("decode") && r.stderr.contains("KV cache"))
    }

    @Test func missingModelNamesTheFix() throws {
        let r = try runKVKit(["generate", "--prompt", "hi", "--model", "/nonexistent/m.gguf"])
        #expect(r.status == 66)
        #expect(r.stderr.contains("make setup") && r.stderr.contains("--model"))
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
    }

    @Test func corruptModelIsADataError() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-corrupt-\(UUID().uuidString).gguf").path
        try Data("GGUF\u{3}\0\0\0garbage".utf8).write(to: URL(fileURLWithPath: path))
        let r = try runKVKit(["generate", "--prompt", "hi", "--model", path])
        #expect(r.status == 65, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("truncated"))
    }

    @Test func badFlagValuesAreUsageErrors() throws {
        for args in [
            ["generate", "--prompt", "hi", "--threads", "0"],
            ["generate", "--prompt", "hi", "--max-tokens", "0"],
            ["generate", "--prompt", "hi", "--page-size", "-3"],
            ["generate", "--prompt", "hi", "--max-tokens", "9000"],
        ] {
            let r = try runKVKit(args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
        }
    }

    @Test func inspectPrintsTheTensorTable() throws {
        let r = try runKVKit(["inspect", TestSupport.modelPath])
        #expect(r.status == 0)
        #expect(r.stdout.contains("architecture: llama"))
        #expect(r.stdout.contains("llama.block_count = 30"))
        #expect(r.stdout.contains("token_embd.weight") && r.stdout.contains("q8_0"))
        #expect(r.stdout.contains("blk.29.ffn_down.weight"))
    }
}
