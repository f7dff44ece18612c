"""Release terminals: each enrolled for one printer by an administrator, with its own revocable credential."""
