import KVKitCLI

KVKitCommand.main()
