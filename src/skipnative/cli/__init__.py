"""The `skip` command: one module per subcommand."""
