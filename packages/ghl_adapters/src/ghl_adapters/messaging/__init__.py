"""Message providers (SMS, email) behind the conversations gateways, each through its official SDK."""
