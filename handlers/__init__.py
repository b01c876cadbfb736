"""Thin Telegram handlers: parse the update, call one service, render the reply."""
