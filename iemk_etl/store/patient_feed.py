"""The patient feed's own rows: each state of a patient's data sent to ИЭМК (iemk.patient_feed) and the state
ИЭМК holds (iemk.patient_registration)."""

from __future__ import annotations

import psycopg


def save(conn: psycopg.Connection, *, patient_id: int, payload_hash: str, mo_oid: str, interaction: str, state: str,
         message_id: str, ack_text: str | None) -> None:
    """Record one attempt to feed this state of the patient's data (counted per state)."""
    conn.execute(
        "INSERT INTO iemk.patient_feed (patient_id, payload_hash, mo_oid, interaction, state, message_id, attempts,"
        " ack_text) VALUES (%s, %s, %s, %s, %s, %s, 1, %s) ON CONFLICT (patient_id, payload_hash) DO UPDATE SET"
        " state = EXCLUDED.state, message_id = EXCLUDED.message_id, attempts = iemk.patient_feed.attempts + 1,"
        " ack_text = EXCLUDED.ack_text, updated_at = now()",
        (patient_id, payload_hash, mo_oid, interaction, state, message_id, ack_text))


def register(conn: psycopg.Connection, patient_id: int, mo_oid: str, payload_hash: str) -> None:
    """ИЭМК holds this state of the patient's data now."""
    conn.execute("INSERT INTO iemk.patient_registration (patient_id, mo_oid, payload_hash) VALUES (%s, %s, %s)"
                 " ON CONFLICT (patient_id) DO UPDATE SET payload_hash = EXCLUDED.payload_hash,"
                 " registered_at = now()", (patient_id, mo_oid, payload_hash))
