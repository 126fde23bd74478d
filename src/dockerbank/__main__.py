from dockerbank.cli.main import entry

entry()
