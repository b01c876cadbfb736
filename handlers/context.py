"""The typed context every handler receives: `context.services` instead of loose dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot, JobQueue

from services.container import Services


@dataclass(slots=True)
class CommandInfo:
    """A command as /help and the Bot API command menu describe it."""

    name: str
    description: str
    usage: str = ""
    admin: bool = False
    keyboard: bool = False  # shown on the main reply keyboard


@dataclass(slots=True)
class BotData:
    """Process-wide wiring reachable from handlers; no per-user business state lives here."""

    services: Services | None = None
    commands: list[CommandInfo] = field(default_factory=list)


class TradewindContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], BotData]):
    """CallbackContext with the app's services attached."""

    @property
    def services(self) -> Services:
        services = self.bot_data.services
        if services is None:
            raise RuntimeError("services are not started (post_init has not run)")
        return services


CONTEXT_TYPES = ContextTypes(context=TradewindContext, bot_data=BotData)

TradewindApp = Application[
    ExtBot[Any],
    TradewindContext,
    dict[Any, Any],
    dict[Any, Any],
    BotData,
    JobQueue[Any],
]
