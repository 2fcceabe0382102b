"""Request bodies of the Pyrus Extensions API v1, field for field as the document names them.

The mapping and telephony bodies are API v4's too: they live in `web.pyrus_bodies`.
"""

from __future__ import annotations

from typing import ClassVar

from frontdesk.core.messages import ChatMessage, ExtensionComment, NewTask
from frontdesk.web.json_body import Body, Scalar, text
from frontdesk.web.pyrus_bodies import (
    AttachCallRecordIn,
    CallIn,
    MappingIn,
    TaskId,
    mapping_pairs,
)

__all__ = [
    "AttachCallRecordIn",
    "CallIn",
    "CommentIn",
    "GetMessageIn",
    "TaskIn",
    "TokenIn",
]


class TokenIn(Body):
    required: ClassVar = ("client_id", "secret")
    client_id: str | None = None
    secret: str | None = None


class TaskIn(Body):
    required: ClassVar = ("account_id",)
    limits: ClassVar = {"account_id": 300}
    account_id: Scalar | None = None
    text: str | None = None
    text_html: str | None = None
    mappings: list[MappingIn] | None = None  # (null: none)

    def to_core(self) -> NewTask:
        return NewTask(
            str(text(self.account_id)),
            self.text,
            self.text_html,
            mapping_pairs(self.mappings),
        )


class CommentIn(Body):
    required: ClassVar = ("account_id", "task_id")
    limits: ClassVar = {"account_id": 300}
    account_id: Scalar | None = None
    task_id: TaskId | None = None
    comment_text: str | None = None
    comment_text_html: str | None = None
    mappings: list[MappingIn] | None = None  # (null: none)
    attachments: list[str] | None = None  # (null: none)
    send_to_external_channel: bool = False

    def to_core(self) -> ExtensionComment:
        assert self.task_id is not None
        return ExtensionComment(
            str(text(self.account_id)),
            self.task_id,
            self.comment_text,
            self.comment_text_html,
            mapping_pairs(self.mappings),
            self.attachments or [],
            self.send_to_external_channel,
        )


class GetMessageIn(Body):
    required: ClassVar = ("account_id", "channel_id")
    limits: ClassVar = {
        "account_id": 300,
        "channel_id": 300,
        "sender_name": 100,
    }  # (an over-long message_type is an unknown one: processed, core.messages)
    account_id: Scalar | None = None
    channel_id: Scalar | None = None
    sender_name: str | None = None
    message_type: str | None = None
    message_text: str | None = None
    message_text_html: str | None = None
    mappings: list[MappingIn] | None = None  # (null: none)
    attachments: list[str] | None = None  # (null: none)

    def to_core(self) -> ChatMessage:
        return ChatMessage(
            str(text(self.account_id)),
            str(text(self.channel_id)),
            self.message_text,
            self.message_text_html,
            self.sender_name,
            self.message_type,
            mapping_pairs(self.mappings),
            self.attachments or [],
        )
