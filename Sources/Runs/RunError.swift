import ModelFile

/// A run, sweep or merge that cannot go on: a one-line message naming the fix, and the sysexits.h
/// category the command line exits with. Finished results are never lost when one is thrown.
public enum RunError: Error, CustomStringConvertible, Equatable {
    /// A bad flag, value or config entry (64).
    case usage(String)
    /// A malformed input file: model, probe file, results file (65).
    case data(String)
    /// A missing input file or folder (66).
    case noInput(String)
    /// A tool the command needs is not installed (69), e.g. `sbatch`.
    case unavailable(String)
    /// An output that cannot be created: an unwritable folder, a run folder in use (73).
    case cantCreate(String)
    /// A read or write that failed mid-run: a full disk, a corrupt cold page (74).
    case io(String)

    public var description: String {
        switch self {
        case let .usage(m), let .data(m), let .noInput(m), let .unavailable(m), let .cantCreate(m), let .io(m): return m.withoutLineBreaks
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .usage: return 64
        case .data: return 65
        case .noInput: return 66
        case .unavailable: return 69
        case .cantCreate: return 73
        case .io: return 74
        }
    }
}
