"""Names the services used before the batch transaction (``shared.runtime.transaction``);
kept while the last of them move over."""

from shared.runtime.transaction import BatchTransaction, decode_headers, derived_event_id, encode_headers  # noqa: F401

UnitOfWork = BatchTransaction
