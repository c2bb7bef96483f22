"""Customer info auto-save: one CRM record per partner id, even under concurrency."""

from __future__ import annotations

from ..customers import merge_customer
from ..customers._autosave import created_record
from ..errors import ConflictError
from ..model import Customer, CustomerInfo, Event
from ..ports import CustomerStore
from ..webhook import EventType
from ..webhook._catalogue import event_owning
from ._base import RETRY, CoreBase, Retry
from ._ops import Eff, call

__all__ = ["Customers"]

# read on every first contact: globals are cheaper to read than class attributes
_CREATED = EventType.CUSTOMER_CREATED
_CREATE = CustomerStore.create


class Customers(CoreBase):
    """The CRM upsert."""

    def save_customer(self, info: CustomerInfo, partner_id: str, now: float) -> Eff[Customer]:
        """Upsert into the CRM by the merge rules; one record even under concurrency.

        A partner id this core has not seen is created first (one port call for a new
        customer: a failed create means it exists, then it is read and merged as usual)."""
        if partner_id not in self._known_partners:
            merged, changed = created_record(info, partner_id, now)  # merge_customer(None, ...)
            events = [self._customer_event(_CREATED, merged, info, changed, now)]
            try:
                yield from call(_CREATE, merged, events)
            except ConflictError:
                pass  # it exists: read and merge below
            else:
                self._know(partner_id)
                if self.emits:
                    yield from self.emit(events)
                else:
                    self.observe(events)
                return merged

        def attempt() -> Eff[Customer | Retry]:
            existing = yield from call(CustomerStore.get, partner_id)
            merged, changed = merge_customer(existing, info, partner_id, now)
            if existing is not None and merged is existing:
                self._know(partner_id)
                return existing
            events: list[Event] = []
            if existing is None or changed:
                type_ = (
                    EventType.CUSTOMER_CREATED if existing is None else EventType.CUSTOMER_UPDATED
                )
                events.append(self._customer_event(type_, merged, info, changed, now))
            try:
                if existing is None:
                    yield from call(CustomerStore.create, merged, events)
                else:
                    yield from call(CustomerStore.replace, merged, existing.version, events)
            except ConflictError:
                return RETRY
            self._know(partner_id)
            yield from self.emit(events)
            return merged

        return (yield from self.retrying("customer", partner_id, attempt))

    def _customer_event(
        self,
        type_: str,
        merged: Customer,
        info: CustomerInfo,
        changed: tuple[str, ...],
        now: float,
    ) -> Event:
        data = {
            "partner_id": merged.partner_id,
            "name": merged.name,
            "email": merged.email,
            "phone": merged.phone,
            "vip_level": merged.vip_level,
            "custom_fields": merged.custom_fields,  # read-only, shared with the record
            "channel": info.channel,
            "changed": list(changed),
        }
        return event_owning(f"evt_{self._ids()}", type_, now, data, None, 0)  # new_id("evt")

    def _know(self, partner_id: str) -> None:
        """Remember that ``partner_id`` has a record (bounded: forgetting costs one call)."""
        known = self._known_partners
        if len(known) >= 65_536:
            known.clear()
        known.add(partner_id)
