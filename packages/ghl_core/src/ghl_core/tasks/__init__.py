"""Tasks: to-dos on a contact, with a due time and an assignee."""
