"""The ``consent`` pipeline stage (check phase): no biometric edit without the person's consent (DSP-14).

A typed biometric operation (``face.swap``, ``voice.clone``, … as configured per service) always
runs the gate; under the default media policy (``detect``) so does any image, video or audio
input in which a face or a voice is found. Every person found must match an active consent of
this service for this operation. Anything the detectors cannot vouch for — no face in a face
edit, faces too small or too compressed to compare, silence or music in a voice edit — is
refused with its own reason, never passed.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from synthgate.consent import biometrics
from synthgate.consent.matcher import cache
from synthgate.consent.service import biometric_operations, operation_kinds
from synthgate.errors import Refused
from synthgate.gateway.pipeline import GenerationContext, Phase
from synthgate.media.limits import MediaLimits

CLAUSE = "DSP-14"

HOW_TO_ASK = (
    "Inform the person whose face or voice you want to edit and obtain their separate consent: "
    "start a consent request (POST /v1/consents/requests with their mobile number and the "
    "operations); they answer through the link sent to them, then send this request again."
)


def _missing(unconsented: int, total: int, what: str) -> Refused:
    people = "person" if total == 1 else "people"
    message = (
        f"this request edits the {what} of {total} {people}, "
        + (f"{unconsented} of whom have" if total > 1 else "who has")
        + " not consented to this use. "
        + HOW_TO_ASK
    )
    return Refused(
        "consent.missing",
        CLAUSE,
        message,
        unconsented=unconsented,
        people=total,
        kind=what,
        request_consent="/v1/consents/requests",
    )


class ConsentStage:
    name = "consent"
    phase: Phase = "check"

    def run(self, ctx: GenerationContext, session: Session) -> None:
        service_settings = ctx.service.settings or {}
        biometric = ctx.operation in biometric_operations(ctx.service)
        policy = service_settings.get("consent_media_policy") or ctx.settings.consent_media_policy
        media = [m for m in ctx.input_media if m.medium in ("image", "video", "audio")]
        if not biometric and (policy != "detect" or not media):
            return
        kinds = operation_kinds(ctx.operation) if biometric else {"face", "voice"}
        settings = ctx.settings
        limits = MediaLimits.from_settings(settings)

        faces: list[biometrics.Face] = []
        compressed = False
        if "face" in kinds:
            for item in media:
                scan = biometrics.scan_media_faces(
                    item, limits, settings.consent_video_fps, settings.consent_video_max_frames
                )
                faces.extend(scan.faces)
                if (
                    scan.faces
                    and scan.jpeg_quality is not None
                    and scan.jpeg_quality < biometrics.MIN_JPEG_QUALITY
                ):
                    compressed = True
        voices: list[biometrics.VoiceScan] = []
        if "voice" in kinds:
            for item in media:
                # A video's sound is checked in a voice edit; in other requests only audio files are.
                if item.medium == "audio" or (item.medium == "video" and biometric):
                    wav = biometrics.audio_of(item, limits)
                    if wav is not None:
                        voices.append(biometrics.scan_voice(wav))

        found_voice = any(v.has_voice for v in voices)
        if biometric and kinds == {"face"} and not faces:
            raise Refused(
                "consent.no_face",
                CLAUSE,
                f"no face was found in the input of this {ctx.operation} request; a face edit needs a "
                "clear, front-facing face in the image or video",
            )
        if biometric and kinds == {"voice"} and not found_voice:
            music = any(v.music_like for v in voices)
            detail = (
                "the audio sounds like music, not speech"
                if music
                else "no audio input was given"
                if not voices
                else "the audio holds too little speech"
            )
            raise Refused(
                "consent.no_voice",
                CLAUSE,
                f"no voice was found for this {ctx.operation} request: {detail}; a voice edit needs "
                f"at least {biometrics.MIN_SPEECH_SECONDS:.1f} s of clear speech",
            )
        if biometric and kinds == {"face", "voice"} and not faces and not found_voice:
            raise Refused(
                "consent.no_person",
                CLAUSE,
                f"neither a face nor a voice was found in the input of this {ctx.operation} request",
            )

        tiny = [f for f in faces if f.embedding is None]
        if tiny:
            raise Refused(
                "consent.face_too_small",
                CLAUSE,
                f"{len(tiny)} face(s) in the input are smaller than {biometrics.MIN_FACE_PX} px and cannot "
                "be compared with a consent; send a larger image of every person whose face is in it",
                faces=len(tiny),
            )
        if compressed:
            raise Refused(
                "consent.low_quality",
                CLAUSE,
                "the image is too heavily compressed to compare its faces with a consent "
                f"(JPEG quality below {biometrics.MIN_JPEG_QUALITY}); send a better copy",
            )

        templates = cache.get(session, ctx.keys, ctx.service.id)
        matched: set[str] = set()
        if faces:
            people = biometrics.distinct_people(faces, settings.consent_face_threshold)
            index = templates.index("face")
            unconsented = 0
            for person in people:
                best = None
                for face in person:
                    assert face.embedding is not None
                    hit = index.best(face.embedding, ctx.operation)
                    if hit is not None and hit[1] < settings.consent_face_threshold:
                        best = hit
                        break
                if best is None:
                    unconsented += 1
                else:
                    matched.add(best[0])
            if unconsented:
                ctx.note(self.name, operation=ctx.operation, people=len(people), unconsented=unconsented)
                raise _missing(unconsented, len(people), "face")
        windows = [e for v in voices for e in v.embeddings]
        if windows:
            index = templates.index("voice")
            unmatched = 0
            for embedding in windows:
                hit = index.best(embedding, ctx.operation)
                if hit is not None and hit[1] < settings.consent_voice_threshold:
                    matched.add(hit[0])
                else:
                    unmatched += 1
            if unmatched:
                ctx.note(self.name, operation=ctx.operation, voice_windows=len(windows), unmatched=unmatched)
                raise _missing(1, max(1, len([v for v in voices if v.has_voice])), "voice")
        ctx.note(
            self.name,
            operation=ctx.operation,
            faces=len(faces),
            voice_windows=len(windows),
            consents=sorted(matched),
            templates_version=templates.version,
        )
