import KVKitCLI
import Policies
import VATPPolicy

// Register the plugin's policy, then run KVKit's own command line: `plugin-kvkit policies` lists it and
// `plugin-kvkit generate --policy vatp --budget 0.25` uses it.
PolicyRegistry.shared.register(VATPPolicy.info)
KVKitCommand.main()
