"""One datagram in, at most one datagram out: the RADIUS door's request handler.

The order of checks: size and shape (packets.header), then the sender (a registered NAS's network), then
its signature (Message-Authenticator with the NAS's secret), then the duplicate cache, then the per-user
rate limit, then the sign-in services. Whatever happens, `handle` returns bytes or None and never raises:
a packet that breaks the handler is dropped and counted.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from server.errors import TokenwardError
from server.radius import metrics, packets
from server.radius.limits import UserLimiter
from server.services import ratelimit_audit
from server.services.audit import Actor, record_event
from server.services.radius_access import AccessAccepted, answer_access_request
from server.services.radius_clients import RadiusPeer, peer_for_address
from server.services.runtime import Runtime

log = logging.getLogger(__name__)

# NASes retransmit for a few seconds (pam_radius_auth: 3 tries, FreeRADIUS: 5 tries at 3 s): an answer is
# kept this long so that a retransmitted request gets it again instead of a second verification.
RETRANSMIT_WINDOW_SECONDS = 30.0
MAX_REMEMBERED_ANSWERS = 10_000  # bounds the cache's memory under a flood of distinct requests
# Dropped packets are audited once per sender and reason per window (a flood must not write the log).
DROP_AUDIT_WINDOW_SECONDS = 60.0

Source = tuple[str, int]


@dataclass
class DropAudit:
    """Audit events for dropped packets, at most one per (sender, reason) and window, with a count."""

    windows: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)

    def should_record(self, *, sender: str, reason: str, now: float) -> int:
        """How many were dropped in the window this one starts (0: inside a window, nothing to write)."""
        started, count = self.windows.get((sender, reason), (0.0, 0))
        if now - started < DROP_AUDIT_WINDOW_SECONDS:
            self.windows[(sender, reason)] = (started, count + 1)
            return 0
        if len(self.windows) > MAX_REMEMBERED_ANSWERS:
            self.windows.clear()
        self.windows[(sender, reason)] = (now, 1)
        return count + 1


class RequestHandler:
    def __init__(
        self,
        sessions: Callable[[], Session],
        rt: Runtime,
        *,
        limiter: UserLimiter | None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions, self._rt, self._limiter, self._monotonic = sessions, rt, limiter, monotonic
        self._answers: OrderedDict[tuple[Source, int, bytes], tuple[float, bytes]] = OrderedDict()
        self._drops = DropAudit()

    def handle(self, data: bytes, source: Source) -> bytes | None:
        started = time.perf_counter()
        try:
            return self._handle(data, source, started)
        except packets.Dropped as dropped:
            metrics.observe_drop(dropped.reason)
        except Exception:
            log.exception("dropped a RADIUS packet from %s that broke the handler", source[0])
            metrics.observe_drop("internal_error")
        return None

    def _handle(self, data: bytes, source: Source, started: float) -> bytes | None:
        code, identifier, authenticator = packets.header(data)
        if code != packets.ACCESS_REQUEST:
            raise packets.Dropped("unsupported_code")
        key = (source, identifier, authenticator)
        remembered = self._remembered(key)
        if remembered is not None:
            metrics.RADIUS_DUPLICATES.inc()
            return remembered
        address = ipaddress.ip_address(source[0].removeprefix("::ffff:"))
        session = self._sessions()
        try:
            peer = peer_for_address(session, self._rt, address=address)
            session.rollback()
            if peer is None:
                self._audit_drop(session, sender=str(address), reason="unknown_client", peer=None)
                raise packets.Dropped("unknown_client")
            try:
                request = packets.parse_access_request(
                    data, secret=peer.secret, require_signature=peer.require_message_authenticator
                )
            except packets.Dropped as dropped:
                self._audit_drop(session, sender=str(address), reason=dropped.reason, peer=peer)
                raise
            except packets.Refused as refused:
                record_event(
                    session,
                    actor=Actor(name=f"radius:{peer.name}", client_ip=str(address)),
                    action="radius.reject",
                    result="failure",
                    now=self._rt.now(),
                    reason=refused.reason,
                )
                session.commit()
                return self._remember(key, self._reject_unparsed(data, peer, refused.reason, started))
            reply = self._decide(session, peer, request, str(address), started)
        finally:
            session.close()
        return self._remember(key, reply)

    def _decide(
        self, session: Session, peer: RadiusPeer, request: packets.AccessRequest, nas: str, started: float
    ) -> bytes:
        actor = Actor(name=f"radius:{peer.name}", client_ip=nas)
        limited = self._rate_limited(session, request.username, nas, actor)
        if limited:
            return self._answer(session, actor, request, "reject", "rate_limited", started)
        try:
            decision = answer_access_request(
                session,
                self._rt,
                peer=peer,
                username=request.username,
                password=request.password,
                state=request.state,
                actor=actor,
            )
        except TokenwardError as err:
            session.rollback()
            return self._answer(session, actor, request, "reject", err.audit_reason or err.code, started)
        session.commit()
        if isinstance(decision, AccessAccepted):
            class_value = f"tokenward acr={decision.acr} amr={','.join(decision.amr)}".encode()
            return self._answer(session, actor, request, "accept", "", started, class_value=class_value)
        return self._answer(
            session, actor, request, "challenge", "", started, state=decision.state, message=decision.prompt
        )

    def _answer(
        self,
        session: Session,
        actor: Actor,
        request: packets.AccessRequest,
        result: str,
        reason: str,
        started: float,
        *,
        class_value: bytes | None = None,
        state: bytes | None = None,
        message: str | None = None,
    ) -> bytes:
        record_event(
            session,
            actor=actor,
            action=f"radius.{result}",
            result="failure" if result == "reject" else "success",
            now=self._rt.now(),
            target=request.username,
            reason=reason,
        )
        session.commit()
        code = {
            "accept": packets.ACCESS_ACCEPT,
            "reject": packets.ACCESS_REJECT,
            "challenge": packets.ACCESS_CHALLENGE,
        }[result]
        encoded = packets.answer(
            request.packet, code, reply_message=message, state=state, class_value=class_value
        )
        metrics.observe_answer(result, reason, time.perf_counter() - started)
        return encoded

    def _reject_unparsed(self, data: bytes, peer: RadiusPeer, reason: str, started: float) -> bytes:
        """An authentic request Tokenward cannot serve (CHAP, EAP, no User-Password)."""
        packet = packets.decode_unchecked(data, secret=peer.secret)
        metrics.observe_answer("reject", reason, time.perf_counter() - started)
        return packets.answer(packet, packets.ACCESS_REJECT)

    def _rate_limited(self, session: Session, username: str, nas: str, actor: Actor) -> bool:
        if self._limiter is None:
            return False
        allowed, window_seconds = self._limiter.hit(username=username, nas_address=nas)
        if allowed:
            return False
        refused = self._limiter.count_refusal(
            username=username, nas_address=nas, window_seconds=window_seconds
        )
        subject = ratelimit_audit.refusal_subject(session, scope="user", username=username, client_ip=nas)
        ratelimit_audit.record_refusal(
            session,
            subject=subject,
            refused=refused,
            window_seconds=window_seconds,
            actor=actor,
            now=self._rt.now(),
        )
        return True

    def _audit_drop(self, session: Session, *, sender: str, reason: str, peer: RadiusPeer | None) -> None:
        count = self._drops.should_record(sender=sender, reason=reason, now=self._monotonic())
        if not count:
            return
        name = f"radius:{peer.name}" if peer is not None else "radius"
        record_event(
            session,
            actor=Actor(name=name, client_ip=sender),
            action="radius.dropped",
            result="failure",
            now=self._rt.now(),
            target=f"{sender}: {count} dropped since the last event" if count > 1 else sender,
            reason=reason,
        )
        session.commit()

    def _remembered(self, key: tuple[Source, int, bytes]) -> bytes | None:
        now = self._monotonic()
        while self._answers:
            oldest_key, (expires, _reply) = next(iter(self._answers.items()))
            if expires > now and len(self._answers) <= MAX_REMEMBERED_ANSWERS:
                break
            del self._answers[oldest_key]
        entry = self._answers.get(key)
        return entry[1] if entry is not None else None

    def _remember(self, key: tuple[Source, int, bytes], reply: bytes) -> bytes:
        self._answers[key] = (self._monotonic() + RETRANSMIT_WINDOW_SECONDS, reply)
        return reply
