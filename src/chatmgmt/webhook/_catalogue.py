"""The event catalogue: every event type the library produces, with its versioned schema.

Each :class:`EventSpec` names the type (dotted), the schema version of its ``data`` and every
field of ``data`` with a description. :func:`make_event` is the only way the library builds an
event: it refuses a type that is not in the catalogue and data whose keys differ from the schema,
so the documentation generated from :data:`CATALOGUE` is always what receivers get.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import ValidationError
from ..model import Event, maker

__all__ = ["CATALOGUE", "EventSpec", "EventType", "make_event"]


@attrs.frozen
class EventSpec:
    """One event type: its name, schema version, description, fields and an example ``data``."""

    type: str
    version: int
    description: str
    fields: Mapping[str, str]
    example: Mapping[str, Any]


class EventType:
    """The event type names as constants."""

    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_UPDATED = "customer.updated"
    AGENT_STATUS_CHANGED = "agent.status_changed"
    CHAT_STARTED = "chat.started"
    CHAT_BOT_STARTED = "chat.bot_started"
    CHAT_HANDED_OFF = "chat.handed_off"
    CHAT_QUEUED = "chat.queued"
    CHAT_UNASSIGNED = "chat.unassigned"
    CHAT_ASSIGNED = "chat.assigned"
    CHAT_TRANSFERRED = "chat.transferred"
    CHAT_RETURNED = "chat.returned"
    CHAT_QUEUE_POSITION = "chat.queue_position"
    CHAT_OFFERED = "chat.offered"
    CHAT_OFFER_ACCEPTED = "chat.offer_accepted"
    CHAT_OFFER_DECLINED = "chat.offer_declined"
    CHAT_OFFER_EXPIRED = "chat.offer_expired"
    CHAT_ENDED = "chat.ended"
    CHAT_TAGGED = "chat.tagged"
    CHAT_UNTAGGED = "chat.untagged"
    CHAT_HELD = "chat.held"
    CHAT_RESUMED = "chat.resumed"
    CHAT_INACTIVITY_CHANGED = "chat.inactivity_changed"
    CHAT_ABANDONED = "chat.abandoned"
    CHAT_REOPENED = "chat.reopened"
    CHAT_INACTIVITY_WARNED = "chat.inactivity_warned"
    CHAT_AGENT_REMINDED = "chat.agent_reminded"
    QUEUE_OVERFLOWED = "queue.overflowed"
    MESSAGE_CUSTOMER = "message.customer"
    MESSAGE_AGENT = "message.agent"
    MESSAGE_SYSTEM = "message.system"
    MESSAGE_BOT = "message.bot"
    OFFLINE_MESSAGE_CREATED = "offline_message.created"
    OFFLINE_MESSAGE_ASSIGNED = "offline_message.assigned"
    OFFLINE_MESSAGE_REPLIED = "offline_message.replied"
    TICKET_CREATED = "ticket.created"
    SATISFACTION_INVITED = "satisfaction.invited"
    SATISFACTION_SUBMITTED = "satisfaction.submitted"
    SATISFACTION_REMINDED = "satisfaction.reminded"
    MODERATION_HIT = "moderation.hit"
    MODERATION_ALERT = "moderation.alert"
    ENDPOINT_DISABLED = "endpoint.disabled"
    SUPERVISOR_JOINED = "supervisor.joined"
    SUPERVISOR_LEFT = "supervisor.left"
    SUPERVISOR_WHISPERED = "supervisor.whispered"
    SUPERVISOR_TOOK_OVER = "supervisor.took_over"
    SUPERVISOR_ENDED = "supervisor.ended"
    SLA_WARNING = "sla.warning"
    SLA_BREACHED = "sla.breached"


_CHAT = {
    "chat_id": "the chat's id",
    "channel": "the channel the chat came from",
    "skill_group": "the chat's skill group ('' when none)",
    "partner_id": "the customer's external id, or null for an anonymous visitor",
}
_REASON = {"reason": "why the router decided this: rule, strategy, eligible counts, exclusions"}
_CHAT_EX = {"chat_id": "c_1", "channel": "web", "skill_group": "sales", "partner_id": "u_42"}
_REASON_EX = {
    "reason": {
        "via": "strategy",
        "strategy": "round_robin",
        "group": "sales",
        "eligible": 3,
        "ineligible": {"offline": 1, "full": 2},
    }
}
_SUPERVISOR = {
    **_CHAT,
    "supervisor": "who acted (the host's id of the supervisor)",
    "supervisor_role": "the role the host gave on the call (the host decides who may act)",
}
_SUPERVISOR_EX = {**_CHAT_EX, "supervisor": "sup_1", "supervisor_role": "supervisor"}
_SLA = {
    **_CHAT,
    "policy": "the SLA policy's name",
    "metric": "first_response, next_response or resolution",
    "target_s": "the target in seconds (business seconds when business_hours)",
    "started_at": "when the clock started (seconds since the epoch)",
    "due_at": "when the target breaches (seconds since the epoch)",
    "business_hours": "whether the target counts the business time of the group's calendar",
}
_SLA_EX = {
    **_CHAT_EX,
    "policy": "vip",
    "metric": "first_response",
    "target_s": 60.0,
    "started_at": 1767261600.0,
    "due_at": 1767261660.0,
    "business_hours": False,
}
_SLA_FIGURES_EX = {
    "policy": "vip",
    "business_hours": False,
    "first_response": {
        "target_s": 60.0,
        "achieved_s": 75.0,
        "breached": True,
        "breaches": 1,
        "runs": 1,
        "running": False,
        "due_at": None,
    },
    "resolution": {
        "target_s": 1800.0,
        "achieved_s": 312.5,
        "breached": False,
        "breaches": 0,
        "runs": 1,
        "running": False,
        "due_at": None,
    },
}
_CUSTOMER = {
    "partner_id": "the customer's external id",
    "name": "name",
    "email": "email",
    "phone": "phone",
    "vip_level": "VIP level (0: none)",
    "custom_fields": "custom fields, merged key by key",
    "channel": "the channel of the chat that saved it",
    "changed": "the fields this save changed",
}
_CUSTOMER_EX = {
    "partner_id": "u_42",
    "name": "Ada",
    "email": "ada@example.com",
    "phone": "",
    "vip_level": 1,
    "custom_fields": {"plan": "pro"},
    "channel": "web",
    "changed": ["email"],
}
_MESSAGE = {
    **_CHAT,
    "message_id": "the message's id",
    "role": "customer, agent, system or bot",
    "sender": "who sent it (agent id, partner id or 'system')",
    "text": "the delivered text (masked where moderation masked it)",
    "moderation": "the moderation action taken ('none', 'mask', 'warn')",
}
_MESSAGE_EX = {
    **_CHAT_EX,
    "message_id": "m_7",
    "role": "customer",
    "sender": "u_42",
    "text": "Hello, my order is late",
    "moderation": "none",
}


def _spec(
    type_: str, description: str, fields: Mapping[str, str], example: Mapping[str, Any]
) -> EventSpec:
    return EventSpec(type_, 1, description, dict(fields), dict(example))


CATALOGUE: dict[str, EventSpec] = {
    s.type: s
    for s in (
        _spec(
            EventType.CUSTOMER_CREATED,
            "A customer record was created by auto-save.",
            _CUSTOMER,
            {**_CUSTOMER_EX, "changed": ["name", "email", "vip_level", "custom_fields"]},
        ),
        _spec(
            EventType.CUSTOMER_UPDATED,
            "Auto-save changed a known customer's record.",
            _CUSTOMER,
            _CUSTOMER_EX,
        ),
        _spec(
            EventType.AGENT_STATUS_CHANGED,
            "An agent's status or reception limit changed.",
            {
                "agent_id": "the agent",
                "status": "online, busy, away or offline",
                "previous_status": "the status before",
                "reception_limit": "chats the agent may hold",
            },
            {
                "agent_id": "a_1",
                "status": "online",
                "previous_status": "offline",
                "reception_limit": 5,
            },
        ),
        _spec(
            EventType.CHAT_STARTED,
            "A customer opened a chat.",
            {**_CHAT, "mode": "real_time or always_on", "priority": "queue priority"},
            {**_CHAT_EX, "mode": "real_time", "priority": 0},
        ),
        _spec(
            EventType.CHAT_BOT_STARTED,
            "The new chat starts in the bot stage: a bot handles it, nobody routes it and it "
            "takes no agent's capacity until it is handed off (sent with chat.started).",
            {**_CHAT, "bot": "the bot's id (open_chat(..., bot=...))"},
            {**_CHAT_EX, "bot": "faq-bot"},
        ),
        _spec(
            EventType.CHAT_HANDED_OFF,
            "The bot handed the chat to a human: it waits for an agent from now on and is "
            "routed at once (chat.assigned, chat.offered or chat.queued follow, their reason "
            "naming the handoff).",
            {
                **_CHAT,
                "bot": "the bot's id",
                "reason": "why the bot handed off (its own words; 'timeout' when "
                "bot.handoff_after_s ran out)",
                "fields": "what the bot gathered, for the agent (a JSON object)",
                "by": "who handed off (the bot, or 'system' for the timeout)",
                "bot_s": "seconds the chat spent in the bot stage",
            },
            {
                **_CHAT_EX,
                "bot": "faq-bot",
                "reason": "customer asked for a human",
                "fields": {"order": "A-1042", "topic": "refund"},
                "by": "faq-bot",
                "bot_s": 42.0,
            },
        ),
        _spec(
            EventType.CHAT_QUEUED,
            "Nobody could take the chat: it waits in its group's queue.",
            {**_CHAT, "position": "0-based position in the queue", **_REASON},
            {**_CHAT_EX, "position": 2, "reason": {"via": "queue", "eligible": 0}},
        ),
        _spec(
            EventType.CHAT_QUEUE_POSITION,
            "A waiting chat's place in its queue or pool changed (chats ahead were served, "
            "left or were removed; a chat of higher priority came in). Sent by tick() at most "
            "once per chat per assignment.queue.position_events_s; the latest place is always "
            "sent in the end.",
            {
                **_CHAT,
                "queue": "the queue or pool",
                "position": "0-based place (0: next to be served)",
                "length": "how many chats wait there",
                "estimated_wait_s": "the wait estimate of queue_status() (null: nobody online)",
            },
            {
                **_CHAT_EX,
                "queue": "queue/sales",
                "position": 2,
                "length": 7,
                "estimated_wait_s": 180.0,
            },
        ),
        _spec(
            EventType.CHAT_UNASSIGNED,
            "Always On Mode: nobody could take the chat: it waits in the unassigned pool.",
            {**_CHAT, **_REASON},
            {**_CHAT_EX, "reason": {"via": "pool", "eligible": 0}},
        ),
        _spec(
            EventType.CHAT_ASSIGNED,
            "An agent received the chat.",
            {**_CHAT, "agent_id": "the agent", **_REASON},
            {**_CHAT_EX, "agent_id": "a_1", **_REASON_EX},
        ),
        _spec(
            EventType.CHAT_TRANSFERRED,
            "The chat moved from one agent to another (manually or automatically).",
            {
                **_CHAT,
                "from_agent_id": "the previous agent",
                "agent_id": "the new agent, or null when the chat went back to the queue",
                "automatic": "true when the previous agent did not answer in time",
                **_REASON,
            },
            {
                **_CHAT_EX,
                "from_agent_id": "a_1",
                "agent_id": "a_2",
                "automatic": True,
                **_REASON_EX,
            },
        ),
        _spec(
            EventType.CHAT_RETURNED,
            "The chat was taken from its agent and went back to its queue (Real-Time) or pool "
            "(Always On), keeping its place: its agent left (the leave policy) or an admin "
            "unassigned it. A chat.queued or chat.unassigned event follows.",
            {
                **_CHAT,
                "from_agent_id": "the agent who held the chat",
                "why": "agent_offline, agent_away (the leave policy) or admin (unassign)",
                "by": "who moved it: 'leave_policy' or the admin's id",
                "queue": "the queue or pool the chat went back to",
            },
            {
                **_CHAT_EX,
                "from_agent_id": "a_1",
                "why": "agent_offline",
                "by": "leave_policy",
                "queue": "queue/sales",
            },
        ),
        _spec(
            EventType.CHAT_OFFERED,
            "The chat was offered to an agent (offers on): they hold its slot until they "
            "accept, decline, or let the offer expire.",
            {
                **_CHAT,
                "agent_id": "the agent offered the chat",
                "expires_at": "when the offer expires (Unix seconds)",
                **_REASON,
            },
            {**_CHAT_EX, "agent_id": "a_1", "expires_at": 1700000030.0, **_REASON_EX},
        ),
        _spec(
            EventType.CHAT_OFFER_ACCEPTED,
            "The agent accepted the offer (chat.assigned follows in the same unit of work).",
            {**_CHAT, "agent_id": "the agent", "waited_s": "seconds the offer waited"},
            {**_CHAT_EX, "agent_id": "a_1", "waited_s": 4.2},
        ),
        _spec(
            EventType.CHAT_OFFER_DECLINED,
            "The agent declined the offer; the chat goes to the next agent (chat.offered or "
            "chat.assigned follows) or waits again (chat.queued or chat.unassigned follows).",
            {
                **_CHAT,
                "agent_id": "the agent who declined (never offered this chat again)",
                "decline_reason": "the reason the agent gave ('' when none)",
            },
            {**_CHAT_EX, "agent_id": "a_1", "decline_reason": "lunch break"},
        ),
        _spec(
            EventType.CHAT_OFFER_EXPIRED,
            "The offer ran out before the agent answered; the chat goes on as after a decline.",
            {**_CHAT, "agent_id": "the agent who did not answer (never offered this chat again)"},
            {**_CHAT_EX, "agent_id": "a_1"},
        ),
        _spec(
            EventType.CHAT_ENDED,
            "The chat ended.",
            {
                **_CHAT,
                "agent_id": "the agent who held it, or null",
                "end_reason": "agent, customer, customer_inactivity, agent_left, system, "
                "queue_timeout, hold_timeout or bot",
                "ended_by": "who ended it",
                "duration_s": "seconds from start to end",
                "sla": "the SLA figures (policy, business_hours, and per target: target_s, "
                "achieved_s, breached, breaches, runs, running, due_at), or null without an SLA",
            },
            {
                **_CHAT_EX,
                "agent_id": "a_1",
                "end_reason": "agent",
                "ended_by": "a_1",
                "duration_s": 312.5,
                "sla": _SLA_FIGURES_EX,
            },
        ),
        _spec(
            EventType.CHAT_ABANDONED,
            "The customer left the queue before an agent took the chat.",
            {**_CHAT, "waited_s": "seconds in the queue"},
            {**_CHAT_EX, "waited_s": 95.0},
        ),
        _spec(
            EventType.CHAT_REOPENED,
            "Always On Mode: an ended conversation was opened again (the customer wrote, or "
            "reopen() was called).",
            {
                **_CHAT,
                "to": "where it went: pool (its group's unassigned pool), last_agent, or agent "
                "(an admin assigned the ended chat)",
                "agent_id": "the agent it went to (null: the pool)",
                "by": "who reopened it (customer for a customer's message)",
                "requested": "where it was asked to go: pool or last_agent",
                "fallback": "why it went to the pool instead of the last agent (null: it did "
                "not): agent_full, agent_offline, agent_gone, agent_excluded, no_last_agent",
            },
            {
                **_CHAT_EX,
                "to": "last_agent",
                "agent_id": "a_1",
                "by": "customer",
                "requested": "last_agent",
                "fallback": None,
            },
        ),
        _spec(
            EventType.CHAT_INACTIVITY_WARNED,
            "The customer was warned that the chat will close for inactivity.",
            {**_CHAT, "end_at": "when the chat will end unless the customer writes"},
            {**_CHAT_EX, "end_at": 1764121200.0},
        ),
        _spec(
            EventType.CHAT_AGENT_REMINDED,
            "The agent was reminded that the customer waits for a reply.",
            {**_CHAT, "agent_id": "the agent"},
            {**_CHAT_EX, "agent_id": "a_1"},
        ),
        _spec(
            EventType.QUEUE_OVERFLOWED,
            "A queue limit was reached: the chat overflowed or was offered to leave a message.",
            {
                **_CHAT,
                "limit": "max_length or max_wait_s",
                "action": "overflow, leave_message or end",
                "target_group": "where it overflowed to, or null",
            },
            {**_CHAT_EX, "limit": "max_wait_s", "action": "leave_message", "target_group": None},
        ),
        *(
            _spec(
                t,
                f"A {role} message was stored in a chat.",
                _MESSAGE,
                {**_MESSAGE_EX, "role": role},
            )
            for t, role in (
                (EventType.MESSAGE_CUSTOMER, "customer"),
                (EventType.MESSAGE_AGENT, "agent"),
                (EventType.MESSAGE_SYSTEM, "system"),
                (EventType.MESSAGE_BOT, "bot"),
            )
        ),
        _spec(
            EventType.OFFLINE_MESSAGE_CREATED,
            "A customer left a message (leave-a-message form).",
            {
                **_CHAT,
                "submission_id": "the submission's id",
                "mode": "offline_message or ticket",
                "fields": "the submitted form fields",
            },
            {
                **_CHAT_EX,
                "submission_id": "c_1",
                "mode": "offline_message",
                "fields": {"email": "ada@example.com", "message": "Please call me back"},
            },
        ),
        _spec(
            EventType.TICKET_CREATED,
            "A left message became a ticket (`submission.mode: ticket`): what a ticketing "
            "system needs to open it. Raised with `offline_message.created`, in the same unit "
            "of work.",
            {
                **_CHAT,
                "ticket_id": "the submission's id (the originating chat's id)",
                "requester": "name, email, phone (the form's values, else the chat's customer) "
                "and partner_id (null for an anonymous visitor)",
                "subject": "the form's subject field, else the description's first line "
                "(at most 80 characters), else 'Message left in chat'",
                "description": "the form's message (or description) field, '' when none",
                "priority": "the chat's priority (0: normal)",
                "tags": "'chat', the channel, the skill group when set, then the form's tags "
                "field (a list or comma-separated text), each once",
                "fields": "the submitted form fields, as validated",
                "transcript": "where to read the conversation: chat_id, and until (the "
                "ticket's creation time: the messages stored before it)",
                "created_at": "when the customer submitted the form (epoch seconds)",
            },
            {
                **_CHAT_EX,
                "ticket_id": "c_1",
                "requester": {
                    "name": "Ada",
                    "email": "ada@example.com",
                    "phone": "",
                    "partner_id": "u_42",
                },
                "subject": "Please call me back",
                "description": "Please call me back",
                "priority": 0,
                "tags": ["chat", "web", "sales"],
                "fields": {"email": "ada@example.com", "message": "Please call me back"},
                "transcript": {"chat_id": "c_1", "until": 1700000000.0},
                "created_at": 1700000000.0,
            },
        ),
        _spec(
            EventType.OFFLINE_MESSAGE_ASSIGNED,
            "A left message was assigned to an agent.",
            {**_CHAT, "submission_id": "the submission's id", "agent_id": "the agent", **_REASON},
            {**_CHAT_EX, "submission_id": "c_1", "agent_id": "a_1", **_REASON_EX},
        ),
        _spec(
            EventType.OFFLINE_MESSAGE_REPLIED,
            "An agent replied to a left message; the reply goes to the customer.",
            {
                **_CHAT,
                "submission_id": "the submission's id",
                "agent_id": "the agent",
                "text": "the reply",
            },
            {
                **_CHAT_EX,
                "submission_id": "c_1",
                "agent_id": "a_1",
                "text": "We called you back.",
            },
        ),
        _spec(
            EventType.SATISFACTION_INVITED,
            "The customer was invited to rate the chat.",
            {
                **_CHAT,
                "agent_id": "the agent the rating will be attributed to",
                "by": "system (at chat end) or the agent's id",
                "invitation": "1 for the first invitation, 2 for the second, ...",
            },
            {**_CHAT_EX, "agent_id": "a_1", "by": "system", "invitation": 1},
        ),
        _spec(
            EventType.SATISFACTION_REMINDED,
            "The customer, invited and silent, was reminded once to rate the chat.",
            {
                **_CHAT,
                "agent_id": "the agent the rating will be attributed to",
                "invited_at": "when the invitation it follows went out (epoch seconds)",
            },
            {**_CHAT_EX, "agent_id": "a_1", "invited_at": 1700000000.0},
        ),
        _spec(
            EventType.SATISFACTION_SUBMITTED,
            "The customer rated the chat.",
            {
                **_CHAT,
                "agent_id": "the agent the rating is attributed to (the last who served)",
                "level": "1 (worst) to the scheme's number of levels",
                "levels": "how many levels the scheme has",
                "label": "the level's label",
                "tags": "chosen tags",
                "resolved": "was the problem solved (null when not asked)",
                "comment": "the customer's comment",
                "overwritten": "true when this rating replaced an earlier one",
            },
            {
                **_CHAT_EX,
                "agent_id": "a_1",
                "level": 5,
                "levels": 5,
                "label": "Very satisfied",
                "tags": ["fast"],
                "resolved": True,
                "comment": "",
                "overwritten": False,
            },
        ),
        _spec(
            EventType.MODERATION_HIT,
            "A message matched sensitive words (Chat Monitoring).",
            {
                **_CHAT,
                "message_id": "the message's id",
                "role": "customer or agent",
                "sender": "who sent it",
                "action": "block, mask or warn (the strongest of the hits)",
                "words": "the words that matched",
                "categories": "their categories",
                "original_text": "the original text, only when sensitive_words."
                "original_in_webhooks is on (else null)",
            },
            {
                **_CHAT_EX,
                "message_id": "m_7",
                "role": "customer",
                "sender": "u_42",
                "action": "mask",
                "words": ["badword"],
                "categories": ["abuse"],
                "original_text": None,
            },
        ),
        _spec(
            EventType.MODERATION_ALERT,
            "One sender reached the alert threshold of hits within the window.",
            {
                **_CHAT,
                "role": "customer or agent",
                "sender": "who sent them",
                "hits": "hits within the window",
                "window_s": "the window",
            },
            {**_CHAT_EX, "role": "customer", "sender": "u_42", "hits": 5, "window_s": 600.0},
        ),
        _spec(
            EventType.ENDPOINT_DISABLED,
            "A webhook endpoint was disabled (410 Gone, or failing for too long).",
            {
                "endpoint_id": "the endpoint",
                "reason": "gone or failing",
                "failing_since": "when it started failing",
            },
            {"endpoint_id": "crm", "reason": "failing", "failing_since": 1764000000.0},
        ),
        _spec(
            EventType.CHAT_TAGGED,
            "Tags were added to the chat.",
            {
                **_CHAT,
                "tags": "the tags added (sorted)",
                "by": "who tagged it",
                "all_tags": "every tag of the chat now (sorted)",
            },
            {**_CHAT_EX, "tags": ["refund"], "by": "a_1", "all_tags": ["billing", "refund"]},
        ),
        _spec(
            EventType.CHAT_UNTAGGED,
            "Tags were removed from the chat.",
            {
                **_CHAT,
                "tags": "the tags removed (sorted)",
                "by": "who untagged it",
                "all_tags": "every tag of the chat now (sorted)",
            },
            {**_CHAT_EX, "tags": ["refund"], "by": "a_1", "all_tags": ["billing"]},
        ),
        _spec(
            EventType.CHAT_HELD,
            "The agent put the chat on hold (waiting for the customer or a third party).",
            {
                **_CHAT,
                "by": "who put it on hold",
                "hold_reason": "the reason given ('' when none)",
                "counts": "whether the chat still counts toward the agent's limit while on hold",
            },
            {**_CHAT_EX, "by": "a_1", "hold_reason": "waiting for billing", "counts": False},
        ),
        _spec(
            EventType.CHAT_RESUMED,
            "The chat on hold resumed: by the agent (resume_chat) or because the customer wrote.",
            {
                **_CHAT,
                "by": "who resumed it ('customer' when the customer's message did)",
                "held_s": "seconds the chat was on hold",
                "counts": "whether the chat counts toward the agent's limit now",
            },
            {**_CHAT_EX, "by": "customer", "held_s": 840.0, "counts": True},
        ),
        _spec(
            EventType.CHAT_INACTIVITY_CHANGED,
            "The chat went inactive (no message for end_of_chat.inactive_after_s, or "
            "set_inactive) or active again (a message, or set_inactive(False)).",
            {
                **_CHAT,
                "agent_id": "the agent who holds the chat",
                "inactive": "whether the chat is inactive now",
                "cause": "silence (the inactivity release), message or set_inactive",
                "counts": "whether the chat counts toward the agent's limit now",
            },
            {**_CHAT_EX, "agent_id": "a_1", "inactive": True, "cause": "silence", "counts": False},
        ),
        _spec(
            EventType.SUPERVISOR_JOINED,
            "A supervisor joined the chat as an observer (Chat Monitoring).",
            {**_SUPERVISOR, "observers": "everyone observing the chat now"},
            {**_SUPERVISOR_EX, "observers": ["sup_1"]},
        ),
        _spec(
            EventType.SUPERVISOR_LEFT,
            "A supervisor stopped observing the chat.",
            {**_SUPERVISOR, "observers": "everyone still observing the chat"},
            {**_SUPERVISOR_EX, "observers": []},
        ),
        _spec(
            EventType.SUPERVISOR_WHISPERED,
            "A supervisor wrote a note for the agent only: never delivered to the customer, "
            "never the agent's reply. Not a message.* event, so a host forwarding message.* "
            "events to the customer never forwards it.",
            {
                **_SUPERVISOR,
                "message_id": "the note's id (stored with role whisper)",
                "agent_id": "the agent holding the chat, or null",
                "text": "the note",
            },
            {
                **_SUPERVISOR_EX,
                "message_id": "m_9",
                "agent_id": "a_1",
                "text": "Offer the refund, it is approved.",
            },
        ),
        _spec(
            EventType.SUPERVISOR_TOOK_OVER,
            "A supervisor took the chat over: it is now theirs (a chat.transferred or "
            "chat.assigned event follows in the same unit of work).",
            {**_SUPERVISOR, "from_agent_id": "the agent who held it, or null when it waited"},
            {**_SUPERVISOR_EX, "from_agent_id": "a_1"},
        ),
        _spec(
            EventType.SUPERVISOR_ENDED,
            "A supervisor ended the chat (chat.ended follows in the same unit of work).",
            {**_SUPERVISOR, "agent_id": "the agent who held it, or null"},
            {**_SUPERVISOR_EX, "agent_id": "a_1"},
        ),
        _spec(
            EventType.SLA_WARNING,
            "An SLA target of the chat is about to breach (sla.warn_before of it is left).",
            _SLA,
            _SLA_EX,
        ),
        _spec(
            EventType.SLA_BREACHED,
            "An SLA target of the chat breached: no answer (or end) by its due time. Raised "
            "by the chat's SLA timer, or by the late answer or end when it comes first; once "
            "per run of a target.",
            _SLA,
            _SLA_EX,
        ),
    )
}
"""Every event type the library produces, by type name: the one source of the schemas."""


def make_event(
    event_id: str,
    type_: str,
    timestamp: float,
    data: Mapping[str, Any],
    *,
    chat_id: str | None = None,
    seq: int = 0,
) -> Event:
    """Build an event, checking its type and data against the catalogue."""
    return event_owning(event_id, type_, timestamp, dict(data), chat_id, seq)


def event_owning(
    event_id: str,
    type_: str,
    timestamp: float,
    data: dict[str, Any],
    chat_id: str | None,
    seq: int,
) -> Event:
    """:func:`make_event` keeping ``data`` itself (a dict the caller built for this event
    alone) instead of a copy."""
    spec = CATALOGUE.get(type_)
    if spec is None:
        raise ValidationError(f"event type {type_!r} is not in the catalogue")
    if data.keys() != spec.fields.keys():
        missing = sorted(set(spec.fields) - set(data))
        extra = sorted(set(data) - set(spec.fields))
        raise ValidationError(
            f"event {type_!r}: data fields differ (missing {missing}, extra {extra})"
        )
    return _new_event(event_id, type_, timestamp, data, chat_id, seq, spec.version)


_new_event = maker(Event)
