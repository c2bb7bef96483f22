"""The :class:`~chatmgmt.ports.CustomerStore` contract: create once, compare-and-set replace,
events in the same unit."""

from __future__ import annotations

from ...errors import ConflictError, NotFoundError
from ...model import Customer
from ._support import StorageCase, event, raises, run_threads

__all__ = ["CustomerStoreContract"]


class CustomerStoreContract(StorageCase):
    """The CRM port: :meth:`~chatmgmt.ports.CustomerStore.create` conflicts on an existing
    ``partner_id``; :meth:`~chatmgmt.ports.CustomerStore.replace` is a compare-and-set; a
    refused write appends none of its events."""

    def test_customer_create_get_round_trip(self) -> None:
        """A created customer reads back equal; a missing one is None."""
        s = self.storage
        assert s.customers.get("nobody") is None
        customer = Customer(
            partner_id="u:{1}",
            name="Ada 'Lovelace'",
            email="ada@example.com",
            vip_level=2,
            custom_fields={"plan": "gold", "k:{x}": "v"},
            channels=frozenset({"web", "app"}),
            created_at=1_700_000_000.25,
            updated_at=1_700_000_000.5,
        )
        s.customers.create(customer, [event(1)])
        assert s.customers.get("u:{1}") == customer
        assert s.outbox.pending() == 1

    def test_customer_create_twice_conflicts_and_appends_nothing(self) -> None:
        """Creating an existing partner_id raises ConflictError; the record and outbox stay."""
        s = self.storage
        first = Customer(partner_id="u1", name="first")
        s.customers.create(first, [event(1)])
        with raises(ConflictError):
            s.customers.create(Customer(partner_id="u1", name="second"), [event(2)])
        assert s.customers.get("u1") == first
        assert s.outbox.pending() == 1

    def test_customer_replace_is_compare_and_set(self) -> None:
        """replace stores only from the expected version; stale raises, missing raises."""
        s = self.storage
        s.customers.create(Customer(partner_id="u1", name="a", version=0))
        v1 = Customer(partner_id="u1", name="b", version=1)
        s.customers.replace(v1, 0, [event(1)])
        assert s.customers.get("u1") == v1
        with raises(ConflictError):
            s.customers.replace(Customer(partner_id="u1", name="c", version=1), 0, [event(2)])
        assert s.customers.get("u1") == v1
        with raises(NotFoundError):
            s.customers.replace(Customer(partner_id="ghost", version=1), 0, [event(3)])
        assert s.customers.get("ghost") is None
        assert s.outbox.pending() == 1

    def test_concurrent_customer_create_gives_one_record(self) -> None:
        """Concurrent first messages: exactly one create wins, the others conflict."""
        s = self.storage

        def create(i: int) -> bool:
            try:
                s.customers.create(Customer(partner_id="same", name=f"n{i}"), [event(i)])
            except ConflictError:
                return False
            return True

        results = run_threads(self.threads, create)
        assert results.count(True) == 1
        stored = s.customers.get("same")
        assert stored is not None and stored.name == f"n{results.index(True)}"
        assert s.outbox.pending() == 1

    def test_concurrent_customer_replace_one_winner_per_version(self) -> None:
        """Concurrent compare-and-sets from one version: exactly one wins."""
        s = self.storage
        s.customers.create(Customer(partner_id="u", version=0))

        def replace(i: int) -> bool:
            try:
                s.customers.replace(Customer(partner_id="u", name=f"n{i}", version=1), 0)
            except ConflictError:
                return False
            return True

        results = run_threads(self.threads, replace)
        assert results.count(True) == 1
        stored = s.customers.get("u")
        assert stored is not None and stored.name == f"n{results.index(True)}"
