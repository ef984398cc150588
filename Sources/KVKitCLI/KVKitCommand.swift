import ArgumentParser
import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import Runs

/// The `kvkit` command. Plugin packages call `KVKitCommand.main()` from their own executable.
public struct KVKitCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kvkit",
        abstract: "A research kit for KV-cache compression on a real model.",
        discussion: """
            Exit codes: 0 success; 64 usage error (bad flag or value); 65 bad data (corrupt model or input file);
            66 missing input file; 69 a needed tool is missing (sbatch); 70 internal error; 73 cannot create an output
            (an unwritable folder, a run folder in use); 74 I/O error (a failed write, a cold page that failed its check).
            """,
        subcommands: [
            Run.self, Generate.self, ListPolicies.self, Probes.self, Inspect.self, Bench.self, BenchPolicies.self, BenchRun.self, BenchQuant.self, Sweep.self,
            Merge.self, Compare.self, Kept.self, Calibrate.self,
        ],
        defaultSubcommand: nil)

    public init() {}

    /// Parses the arguments, runs the command and exits. Unlike ArgumentParser's default, a write to
    /// standard output that failed (a full disk, a closed pipe, `> /dev/full`) exits 74 with a one-line
    /// error instead of 0, so a script never mistakes a lost result for a success.
    public static func main(_ arguments: [String]? = nil) {
        var command: ParsableCommand
        do { command = try parseAsRoot(arguments) } catch {
            // A mistake in the arguments is one line naming the fix, as every other error (ArgumentParser
            // prints three to four with a usage block); --help and --version print as usual.
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            let first = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
            let message = first.hasPrefix("Error: ") ? String(first.dropFirst(7)) : first
            let args = arguments ?? Array(CommandLine.arguments.dropFirst())
            let sub = args.first.flatMap { a in configuration.subcommands.first { $0._commandName == a } }.map { " " + $0._commandName } ?? ""
            let fix = message.hasSuffix("?") || message.hasSuffix(".") ? " See 'kvkit\(sub) --help'." : "; see 'kvkit\(sub) --help'"
            FileHandle.standardError.write(Data("error: \(message)\(fix)\n".utf8))
            Glibc.exit(ExitCodes.usage)
        }
        do {
            try command.run()
            guard fflush(stdout) == 0, ferror(stdout) == 0 else {
                FileHandle.standardError.write(
                    Data("error: cannot write to standard output (\(String(cString: strerror(errno)))); the output is incomplete\n".utf8))
                Glibc.exit(ExitCodes.ioError)
            }
            Glibc.exit(0)
        } catch {
            exit(withError: error)
        }
    }
}

/// Exit codes (sysexits.h), listed in `kvkit --help`.
public enum ExitCodes {
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65
    public static let noInput: Int32 = 66
    public static let unavailable: Int32 = 69
    public static let software: Int32 = 70
    public static let cantCreate: Int32 = 73
    public static let ioError: Int32 = 74
}

/// Runs a command's body, turning a library `RunError` into its one-line message and exit code.
func runReporting(_ body: () throws -> Void) throws {
    do { try body() } catch let e as RunError { throw fail(e.description, code: e.exitCode) }
}

/// Prints a one-line error to stderr and returns the exit code to throw.
func fail(_ message: String, code: Int32) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode(code)
}
