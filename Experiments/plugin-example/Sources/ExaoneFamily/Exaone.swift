import ModelFile
import Models

extension Architecture {
    /// EXAONE 3 / 3.5 (LG AI Research; llama.cpp's `exaone`): the Llama block (RMS norms, SwiGLU, split
    /// Q/K/V) with RoPE on halves (llama.cpp lists `LLM_ARCH_EXAONE` under `LLAMA_ROPE_TYPE_NEOX`). Its
    /// files name the pre-tokenizer "exaone", which KVKit already reads (llama.cpp splits it as SmolLM2's),
    /// and a chat template of its own, which comes with the family.
    public static let exaone: Architecture = {
        var a = Architecture(names: ["exaone"])
        a.ropePairs = .halves
        a.chatFormats = [.exaone3]
        return a
    }()
}

extension ChatFormat {
    /// EXAONE 3's turns, as llama.cpp's `exaone3` template writes them: `[|system|]…[|endofturn|]\n`,
    /// `[|user|]…\n` (no end marker), `[|assistant|]…[|endofturn|]\n`; recognised by the same three markers.
    public static let exaone3 = ChatFormat(
        name: "exaone3", header: { "[|\($0)|]" }, endOfTurn: "[|endofturn|]", userTurnEndsWithMarker: false,
        recognises: { $0.contains("[|system|]") && $0.contains("[|assistant|]") && $0.contains("[|endofturn|]") })
}
