"""Notes: free text kept on a contact by users and integrations."""
