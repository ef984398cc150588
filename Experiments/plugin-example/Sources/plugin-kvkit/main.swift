import ExaoneFamily
import KVKitCLI
import Models
import PasskeyProbe
import Policies
import Probes
import ScissorhandsPolicy
import VATPPolicy

// Register the plugin's policies, probe and model family (one line each), then run KVKit's own command line:
// `plugin-kvkit policies` / `plugin-kvkit probes` list them, and
// `plugin-kvkit run --policy vatp --probe passkey` runs them like built-ins.
PolicyRegistry.shared.register(VATPPolicy.info)
PolicyRegistry.shared.register(ScissorhandsPolicy.info)
ProbeRegistry.shared.register(PasskeyProbe.info)
Architecture.register(.exaone)
KVKitCommand.main()
