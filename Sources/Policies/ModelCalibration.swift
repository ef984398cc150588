import Foundation

/// A value a policy measures once per model — DuoAttention's head scores, KVzap's predictor, Q-Filters'
/// directions: kept in memory for the process and in `$KVKIT_HOME/<name>-<SHA-256 prefix><arithmetic><settings>.json`
/// beside the model's SHA-256, the arithmetic (weights and kernels differ in the last bits), the settings and
/// `version` (bumped when the measurement changes). A file that does not match all of them, or whose value
/// `valid` rejects (another model's shapes), is measured again; a file that cannot be written is only a
/// lost shortcut. One lock per calibration: two variants asking at once measure once.
public final class ModelCalibration<Value: Codable & Sendable>: @unchecked Sendable {
    public let name: String, version: Int
    private let lock = NSLock()
    private var memo: [String: Value] = [:]

    struct Stored: Codable { let version: Int; let sha256: String; let settings: String; let value: Value }

    public init(name: String, version: Int) { self.name = name; self.version = version }

    /// The value for `model` and `settings` (a file-name suffix such as `-s12-t512`): from memory, from the
    /// file, or `measure()`d and kept.
    public func value(model: any ModelPass, settings: String = "", valid: (Value) -> Bool, measure: () throws -> Value) throws -> Value {
        let (file, arithmetic) = model.identity
        lock.lock(); defer { lock.unlock() }
        if let m = memo[file + arithmetic + settings] { return m }
        if let path = path(model, settings), let data = FileManager.default.contents(atPath: path),
            let s = try? JSONDecoder().decode(Stored.self, from: data), s.version == version, s.sha256 == file + arithmetic, s.settings == settings,
            valid(s.value)
        {
            memo[file + arithmetic + settings] = s.value
            return s.value
        }
        let v = try measure()
        keep(v, model: model, settings: settings)
        return v
    }

    /// Keeps a value measured elsewhere as `value` would (a test measures once and checks both ways).
    public func remember(_ v: Value, model: any ModelPass, settings: String = "") {
        lock.lock(); defer { lock.unlock() }
        keep(v, model: model, settings: settings)
    }

    /// Where the value for `model` and `settings` is kept (nil: no `$KVKIT_HOME`).
    public func path(_ model: any ModelPass, _ settings: String) -> String? {
        let (file, arithmetic) = model.identity
        return model.home.map { $0 + "/\(name)-\(file.prefix(16))\(arithmetic)\(settings).json" }
    }

    /// Under `lock`.
    private func keep(_ v: Value, model: any ModelPass, settings: String) {
        let (file, arithmetic) = model.identity
        memo[file + arithmetic + settings] = v
        if let path = path(model, settings), let home = model.home,
            let data = try? JSONEncoder().encode(Stored(version: version, sha256: file + arithmetic, settings: settings, value: v))
        {
            try? FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
            try? data.write(to: URL(fileURLWithPath: path), options: .atomic)
        }
    }
}
