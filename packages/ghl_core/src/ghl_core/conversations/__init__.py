"""Conversations: two-way SMS and email with contacts, through provider gateways."""
