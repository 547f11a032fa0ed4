"""File-in/file-out stages, one module per rule family (top layer: nothing in the package
imports them; the workflow scripts call them)."""
