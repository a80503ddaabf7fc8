"""The `ghl` sub-commands: each parses its options and hands off to a plain function."""
