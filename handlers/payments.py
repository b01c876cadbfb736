"""/buy: licence plans for Telegram Stars, the pre-checkout check and the payment receipt."""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, Update
from telegram.ext import MessageHandler, PreCheckoutQueryHandler, filters

from core.errors import DomainError
from handlers.base import (
    Handler,
    button,
    callback_data,
    callback_parts,
    command,
    measured,
    presser,
    sender,
)
from handlers.context import CommandInfo, TradewindContext
from handlers.render import license_line

COMMANDS = (CommandInfo("buy", "Buy licence days with Telegram Stars"),)

NOTHING_FOR_SALE = "Nothing is for sale right now. /redeem a promo code or ask an admin."


async def buy(update: Update, context: TradewindContext) -> None:
    """List the plans for sale, one button each."""
    _, message = sender(update)
    offers = context.services.payments.offers()
    if not offers:
        await message.reply_html(escape(NOTHING_FOR_SALE))
        return
    rows = [
        [
            InlineKeyboardButton(
                f"{plan.name} · {plan.days} days · {plan.stars} ⭐",
                callback_data=callback_data("buy", plan.name),
            )
        ]
        for plan in offers
    ]
    await message.reply_html(
        "<b>Buy a licence with Telegram Stars</b>\n"
        "Days add to your current licence. Choose a plan:",
        reply_markup=InlineKeyboardMarkup(rows),
    )


async def buy_button(update: Update, context: TradewindContext) -> None:
    """Send the Stars invoice for the chosen plan (`buy:<plan>`)."""
    user, query = presser(update)
    parts = callback_parts(update)
    invoice = context.services.payments.invoice(user.id, parts[1] if len(parts) == 2 else "")
    await query.answer()
    chat_id = update.effective_chat.id if update.effective_chat else user.id
    await context.bot.send_invoice(
        chat_id=chat_id,
        title=invoice.title,
        description=invoice.description,
        payload=invoice.payload,
        currency=invoice.currency,
        prices=[LabeledPrice(invoice.title, invoice.amount)],
    )


async def pre_checkout(update: Update, context: TradewindContext) -> None:
    """Accept the checkout only if the plan is still sold at the invoiced price."""
    query = update.pre_checkout_query
    if query is None:
        return
    try:
        context.services.payments.check_checkout(
            query.from_user.id, query.invoice_payload, query.currency, query.total_amount
        )
    except DomainError as err:
        await query.answer(ok=False, error_message=str(err))
        return
    await query.answer(ok=True)


async def paid(update: Update, context: TradewindContext) -> None:
    """Credit a successful payment (once per charge) and show the licence."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.successful_payment is None:
        return
    payment = message.successful_payment
    outcome = await context.services.payments.complete(
        user.id,
        payment.invoice_payload,
        payment.currency,
        payment.total_amount,
        payment.telegram_payment_charge_id,
        payment.provider_payment_charge_id,
    )
    days = "1 day" if outcome.days == 1 else f"{outcome.days} days"
    head = (
        f"⭐ Thank you! {outcome.amount} Stars received: {days} of <b>{escape(outcome.plan)}</b>."
        if outcome.credited
        else "This payment was already credited."
    )
    await message.reply_html(f"{head}\n{license_line(outcome.license)}")


def handlers() -> list[Handler]:
    return [
        command("buy", buy),
        button("buy", buy_button),
        PreCheckoutQueryHandler(measured("pre_checkout", pre_checkout)),
        MessageHandler(filters.SUCCESSFUL_PAYMENT, measured("successful_payment", paid)),
    ]
