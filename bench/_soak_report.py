"""What a soak found: the contact check over the sandbox's final state (one unmerged contact per
customer identity, one conversation per contact, each thread in one conversation), the verdict
and the summary lines."""

from __future__ import annotations

from typing import Any

from actors.tools import count_out_of_order, read_mark

__all__ = ["check_contacts", "summary", "verdict"]


def check_contacts(
    contacts: list[dict[str, Any]], conversations: list[dict[str, Any]], customers: int
) -> dict[str, Any]:
    """Each customer identity (phone, else the channel user id attribute) has exactly one
    unmerged contact, which has exactly one conversation; and each thread's parts are in one
    conversation. Also recounts doubled and reordered parts from the final state."""
    by_identity: dict[str, list[str]] = {}
    for contact in contacts:
        if contact["merged_into"] is not None:
            continue
        attributes = contact.get("custom_attributes") or {}
        user_ids = sorted(f"{k}={v}" for k, v in attributes.items() if k.endswith("_user_id"))
        identity = str(contact["phone"]) if contact.get("phone") else ",".join(user_ids)
        by_identity.setdefault(identity, []).append(str(contact["id"]))
    per_contact: dict[str, int] = {}
    thread_conversations: dict[int, set[str]] = {}
    thread_seqs: dict[int, list[int]] = {}
    for conversation in conversations:
        contact_id = str(conversation["contact_id"])
        per_contact[contact_id] = per_contact.get(contact_id, 0) + 1
        for part in conversation["parts"]:
            found = read_mark(part.get("body"))
            if found is None:
                continue
            _, thread, seq = found
            thread_conversations.setdefault(thread, set()).add(str(conversation["id"]))
            thread_seqs.setdefault(thread, []).append(seq)
    duplicates = {k: v for k, v in by_identity.items() if len(v) > 1}
    split = {c: n for c, n in per_contact.items() if n > 1}
    split_threads = sorted(t for t, c in thread_conversations.items() if len(c) > 1)
    doubled = sum(len(s) - len(set(s)) for s in thread_seqs.values())
    reordered = sum(count_out_of_order(s) for s in thread_seqs.values())
    return {
        "customers_with_contact": len(by_identity),
        "customers_expected": customers,
        "duplicate_contacts": sum(len(v) - 1 for v in duplicates.values()),
        "duplicate_contact_detail": dict(list(duplicates.items())[:10]),
        "split_conversations": sum(n - 1 for n in split.values()),
        "split_conversation_contacts": list(split)[:10],
        "split_threads": split_threads[:10],
        "final_doubled": doubled,
        "final_reordered": reordered,
        "parts": sum(len(s) for s in thread_seqs.values()),
    }


def verdict(result: dict[str, Any]) -> bool:
    checker = result.get("checker")
    contacts = result.get("contacts")
    if checker is None or contacts is None or result.get("timed_out"):
        return False
    return bool(
        checker["passed"]
        and contacts["duplicate_contacts"] == 0
        and contacts["split_conversations"] == 0
        and not contacts["split_threads"]
        and contacts["final_doubled"] == 0
        and contacts["final_reordered"] == 0
        and contacts["customers_with_contact"] == contacts["customers_expected"]
    )


def summary(result: dict[str, Any], passed: bool) -> list[str]:
    c = result.get("checker") or {}
    k = result.get("contacts") or {}
    lat = c.get("latency_ms") or {}
    return [
        f"{'PASS' if passed else 'FAIL'}: soak on {result['store']}, {result['nodes']} node(s)"
        + (" (timed out)" if result.get("timed_out") else ""),
        f"  customers {result.get('customers')}, messages {result.get('messages')}, "
        f"rate {result.get('rate')}/s, kills {result['kills']}",
        f"  sent {c.get('sent')}, acknowledged {c.get('acknowledged')}, delivered "
        f"{c.get('delivered')}, lost {c.get('lost')}, doubled {c.get('duplicated')}, "
        f"reordered {c.get('out_of_order')}, redelivered webhooks {c.get('ingress_retries')}",
        f"  contacts for {k.get('customers_with_contact')} of {k.get('customers_expected')} "
        f"customers, duplicate contacts {k.get('duplicate_contacts')}, split conversations "
        f"{k.get('split_conversations')} (threads split {len(k.get('split_threads') or [])}); "
        f"final state: doubled {k.get('final_doubled')}, reordered {k.get('final_reordered')}",
        f"  load {result.get('load_s')} s, throughput {result.get('throughput_per_s')} "
        f"messages/s, acknowledgement → Intercom latency ms p50 {lat.get('p50')}, p99 "
        f"{lat.get('p99')}, max {lat.get('max')}; wall time {result['wall_s']} s",
        f"  Intercom requests {result.get('intercom_requests')}, answered 429: "
        f"{result.get('intercom_rate_limited')}; work directory {result['workdir']}",
    ]
