"""chatmgmt: the chat-management layer of a live-chat customer-service product.

Import what you need from here; subpackages (``assignment``, ``moderation``, ``lifecycle``,
``webhook``, ``storage``, ``simulation``, ``testing``) hold the rest.
"""

from .assignment import RouteRequest
from .errors import (
    AssignmentError,
    ChatMgmtError,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    SettingsError,
    ValidationError,
)
from .manager import AsyncChatManager, ChatManager, QueueStatus, SystemClock
from .model import (
    Agent,
    AgentLoad,
    AgentStatus,
    Channel,
    Chat,
    ChatState,
    Customer,
    CustomerInfo,
    EndReason,
    Event,
    Message,
    MessageRole,
    ReceptionMode,
)
from .settings import ChatSettings
from .storage import MemoryStorage

__all__ = [
    "Agent",
    "AgentLoad",
    "AgentStatus",
    "AssignmentError",
    "AsyncChatManager",
    "Channel",
    "Chat",
    "ChatManager",
    "ChatMgmtError",
    "ChatSettings",
    "ChatState",
    "ConflictError",
    "Customer",
    "CustomerInfo",
    "EndReason",
    "Event",
    "InvalidTransitionError",
    "MemoryStorage",
    "Message",
    "MessageRole",
    "NotFoundError",
    "QueueStatus",
    "ReceptionMode",
    "RouteRequest",
    "SettingsError",
    "SystemClock",
    "ValidationError",
]

__version__ = "0.1.0"
