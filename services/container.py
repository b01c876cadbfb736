"""The services of one running bot, built once at start-up and reached by every handler."""

from __future__ import annotations

from dataclasses import dataclass

from core.cache import CacheLayer
from core.clock import Clock
from core.crypto import SecretBox
from core.metrics import Metrics
from db.repositories.audit import AuditRepository
from db.repositories.licenses import LicenseRepository
from db.repositories.users import UserRepository
from db.store import Store
from services.access import AccessPolicy
from services.alerts import AlertThrottle
from services.audit import AuditService
from services.licenses import LicenseService
from services.monitoring import MonitoringService
from services.users import UserService


@dataclass(slots=True)
class Services:
    """Handlers reach these through `context.services`."""

    clock: Clock
    metrics: Metrics
    cache: CacheLayer
    secrets: SecretBox
    access: AccessPolicy
    users: UserService
    licenses: LicenseService
    monitoring: MonitoringService
    audit: AuditService
    alerts: AlertThrottle


def build_services(
    store: Store,
    clock: Clock,
    metrics: Metrics,
    cache: CacheLayer,
    secrets: SecretBox,
    admin_ids: frozenset[int],
) -> Services:
    """Wire every service over one store, cache layer and clock."""
    licenses = LicenseService(LicenseRepository(store), clock)
    return Services(
        clock=clock,
        metrics=metrics,
        cache=cache,
        secrets=secrets,
        access=AccessPolicy(admin_ids),
        users=UserService(UserRepository(store), licenses, cache, clock),
        licenses=licenses,
        monitoring=MonitoringService(metrics, cache),
        audit=AuditService(AuditRepository(store), clock),
        alerts=AlertThrottle(clock),
    )
