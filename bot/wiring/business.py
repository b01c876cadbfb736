"""The business side: who may do what, licences, promo codes, payments, admin tools."""

from __future__ import annotations

from dataclasses import dataclass

from bot.wiring.core import Shared
from services.access import AccessPolicy
from services.broadcasts import BroadcastService
from services.licenses import LicenseService
from services.notify_settings import NotificationSettings
from services.payments import PaymentService
from services.plans import PlanCatalog
from services.promos import PromoService
from services.user_admin import UserAdminService
from services.users import UserService


@dataclass(slots=True, frozen=True)
class Business:
    access: AccessPolicy
    users: UserService
    licenses: LicenseService
    notify: NotificationSettings
    promos: PromoService
    payments: PaymentService
    user_admin: UserAdminService
    broadcasts: BroadcastService


def build_business(s: Shared, admin_ids: frozenset[int]) -> Business:
    repos, clock, audit, work = s.repos, s.clock, s.audit, s.work
    plans = PlanCatalog(s.settings.plans)
    access = AccessPolicy(admin_ids)
    licenses = LicenseService(
        repos.licenses, clock, users=repos.users, audit=audit, work=work, plans=plans
    )
    return Business(
        access=access,
        users=UserService(repos.users, licenses, s.cache, clock),
        licenses=licenses,
        notify=NotificationSettings(repos.users),
        promos=PromoService(repos.promos, repos.licenses, audit, work, plans, clock),
        payments=PaymentService(repos.payments, repos.licenses, audit, work, plans, clock),
        user_admin=UserAdminService(repos.users, repos.analytics, licenses, audit, s.cache, access),
        broadcasts=BroadcastService(repos.broadcasts, work, audit, clock),
    )
