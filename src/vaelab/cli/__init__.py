"""The command line: parse, build a config, call the library; user errors are one line, exit 2."""
