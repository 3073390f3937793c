"""The demo world ``manage.py seed_demo`` builds: four cities, their riders, and the riders' history.

Everything is keyed by a stable natural key, so a second run finds it and creates nothing:
cities by code, riders (and their users) by a mobile derived from the rider's index, vehicles by
a registration derived from the same index, orders by ``external_ref`` (``DEMO-000123-04``),
ledger postings by idempotency key. A rider and all of its history are written in the same
transaction as the rest of its batch, so a rider either exists with its whole world or not at all.

Each rider draws from its own ``random.Random`` seeded with ``(seed, index)``: the world is the same
whatever the batch size, and growing ``--riders`` adds riders without reshuffling the old ones.
Times are relative to the start of the run (a rider on duty started its shift hours ago, its GPS
trail ends seconds ago); ledger entries are the exception, stamped with the time they are posted,
because the ledger is append-only and stamps ``created_at`` itself.
"""

from __future__ import annotations

import io
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, models, transaction
from django.utils import timezone
from PIL import Image, ImageDraw
from psycopg import sql

from fleet.models import City, Vehicle, VehicleKind
from fleet.services import Point, location_points_record
from fleet.simulation import (
    LatLon,
    Mover,
    cruise_kmh_for,
    destination,
    haversine_m,
    mover_trail,
    random_point_within,
)
from orders.models import Order, OrderEvent, OrderStatus
from riders.models import (
    AlertStatus,
    DutyEndReason,
    DutyLog,
    DutyStatus,
    EmergencyAlert,
    KycDocument,
    KycDocumentType,
    KycStatus,
    Rating,
    ReviewStatus,
    Rider,
    RiderStatus,
    SupportTicket,
    TicketCategory,
    TicketPriority,
    TicketStatus,
    kyc_upload_to,
)
from wallet.models import Account, EntryType, WithdrawalRequest, WithdrawalStatus
from wallet.services import ledger_entry_post

DEMO_PASSWORD = "fleetops-demo"
#: The riders with these indices can log in to the driver app with ``DEMO_PASSWORD``; they cover
#: on duty, off duty, KYC pending and suspended, so each app screen has someone to show it.
DEMO_LOGIN_INDICES = range(5)
BATCH_RIDERS = 50
TRAIL_MINUTES = 30
TRAIL_INTERVAL_S = 10.0
HISTORY_DAYS = 14
MAX_ORDERS_PER_RIDER = 60

OPS_USERS = (("demo-ops-asha", "Asha", "Menon"), ("demo-ops-vikram", "Vikram", "Rao"))
PARTNER_USER = ("demo-partner", "QuickBasket", "Partner")


@dataclass(frozen=True)
class CitySpec:
    code: str
    name: str
    center: LatLon
    state: str
    rto_codes: tuple[str, ...]
    language: str
    localities: tuple[str, ...]
    weight: int


CITIES: tuple[CitySpec, ...] = (
    CitySpec(
        "BLR",
        "Bengaluru",
        LatLon(12.9716, 77.5946),
        "KA",
        ("01", "02", "03", "04", "05", "41", "51", "53"),
        "kn",
        (
            "Indiranagar",
            "Koramangala",
            "HSR Layout",
            "Jayanagar",
            "Whitefield",
            "Malleshwaram",
            "BTM Layout",
            "Hebbal",
            "Marathahalli",
            "Basavanagudi",
        ),
        32,
    ),
    CitySpec(
        "DEL",
        "Delhi",
        LatLon(28.6139, 77.2090),
        "DL",
        ("01", "02", "03", "04", "05", "07", "08", "09"),
        "hi",
        (
            "Connaught Place",
            "Karol Bagh",
            "Lajpat Nagar",
            "Saket",
            "Hauz Khas",
            "Rajouri Garden",
            "Mayur Vihar",
            "Janakpuri",
            "Chandni Chowk",
            "Greater Kailash",
        ),
        26,
    ),
    CitySpec(
        "MUM",
        "Mumbai",
        LatLon(19.0760, 72.8777),
        "MH",
        ("01", "02", "03", "04", "43", "46", "47", "48"),
        "mr",
        (
            "Andheri East",
            "Bandra West",
            "Powai",
            "Dadar",
            "Kurla",
            "Santacruz",
            "Chembur",
            "Ghatkopar",
            "Vile Parle",
            "Sion",
        ),
        24,
    ),
    CitySpec(
        "HYD",
        "Hyderabad",
        LatLon(17.3850, 78.4867),
        "TS",
        ("07", "08", "09", "10", "11", "12", "13", "15"),
        "te",
        (
            "Banjara Hills",
            "Jubilee Hills",
            "Gachibowli",
            "Madhapur",
            "Kukatpally",
            "Begumpet",
            "Secunderabad",
            "Ameerpet",
            "Kondapur",
            "Himayatnagar",
        ),
        18,
    ),
)

FIRST_NAMES = (
    "Aarav",
    "Aditya",
    "Akash",
    "Amit",
    "Anil",
    "Arjun",
    "Deepak",
    "Ganesh",
    "Harish",
    "Imran",
    "Karan",
    "Kiran",
    "Manoj",
    "Mohammed",
    "Naveen",
    "Nikhil",
    "Pradeep",
    "Rahul",
    "Rajesh",
    "Ravi",
    "Rohit",
    "Sachin",
    "Sandeep",
    "Santosh",
    "Suresh",
    "Tarun",
    "Venkat",
    "Vijay",
    "Vinod",
    "Yusuf",
    "Anjali",
    "Divya",
    "Kavya",
    "Lakshmi",
    "Meena",
    "Neha",
    "Pooja",
    "Priya",
    "Sneha",
    "Sunita",
    "Farhan",
    "Gurpreet",
    "Jaspreet",
    "Abdul",
)
SURNAMES = (
    "Sharma",
    "Verma",
    "Gupta",
    "Singh",
    "Kumar",
    "Reddy",
    "Naidu",
    "Rao",
    "Patil",
    "Pawar",
    "Shinde",
    "Joshi",
    "Iyer",
    "Nair",
    "Menon",
    "Gowda",
    "Shetty",
    "Khan",
    "Shaikh",
    "Ansari",
    "Yadav",
    "Chauhan",
    "Mishra",
    "Pandey",
    "Das",
    "Bose",
    "Pillai",
    "Hegde",
    "Kulkarni",
    "Deshmukh",
    "Qureshi",
    "Thakur",
)
SHOPS = (
    "Annapoorna Tiffins",
    "Fresh Basket Mart",
    "Spice Route Kitchen",
    "Apollo Pharmacy",
    "Chai Point",
    "Meghana Biryani",
    "Daily Needs Store",
    "Green Leaf Organics",
    "Burger Junction",
    "Sagar Ratna",
    "Paradise Biryani",
    "Wellness Medicos",
    "Kirana King",
    "Cake Walk Bakery",
    "Tandoor Express",
)
BUILDINGS = (
    "Prestige Apartments",
    "Sai Residency",
    "Green Park Towers",
    "Lake View Heights",
    "Shanti Niketan",
    "Royal Enclave",
    "Sunrise Villas",
    "Krishna Kunj",
    "Silver Oak Residency",
    "Palm Grove",
)
PARTNERS = ("QuickBasket", "DailyFresh", "MedExpress", "FoodFleet")
CANCEL_REASONS = (
    "Customer cancelled",
    "Restaurant closed",
    "Item out of stock",
    "Duplicate order",
    "Payment failed",
)
FAILURE_REASONS = ("CUSTOMER_UNREACHABLE", "ADDRESS_NOT_FOUND", "CUSTOMER_REFUSED", "PREMISES_CLOSED")
RATING_COMMENTS = (
    "Quick and polite.",
    "Delivered on time.",
    "Called before arriving, very helpful.",
    "Food arrived cold.",
    "Left the package at the gate without calling.",
    "Very professional.",
    "Took a long route.",
)
DOC_REJECTIONS = (
    "Photo is blurred",
    "Name does not match PAN",
    "Document has expired",
    "Both sides not uploaded",
    "Selfie does not match ID photo",
)
SUSPENSION_REASONS = (
    "Repeated COD deposit delays",
    "Customer complaint under investigation",
    "Unsafe riding reported",
    "Documents under re-verification",
)
WITHDRAWAL_REJECTIONS = (
    "Bank account name does not match KYC",
    "COD cash not yet deposited",
    "Suspected duplicate request",
)
INCENTIVE_MEMOS = ("Weekly target bonus", "Rain surge bonus", "Peak-hour incentive", "Referral bonus")
ALERT_MESSAGES = (
    "Bike skidded, minor injury",
    "Being followed by a car",
    "Accident at the junction",
    "Vehicle broke down in an unsafe area",
    "",
)
TICKETS: dict[str, tuple[tuple[str, str], ...]] = {
    TicketCategory.PAYMENT: (
        ("Withdrawal not received", "I requested a withdrawal three days ago and it has not reached my bank."),
        ("Earning missing for an order", "An order I delivered yesterday does not show in my wallet."),
    ),
    TicketCategory.ORDER: (
        ("Customer not reachable", "The customer did not answer calls and the gate was locked."),
        ("Wrong drop address", "The drop pin is two kilometres away from the written address."),
    ),
    TicketCategory.VEHICLE: (
        ("Bike needs service", "Front brake is weak, I need a service slot this week."),
        ("Battery swap station closed", "The swap station near my zone was closed during my shift."),
    ),
    TicketCategory.APP: (
        ("App logs me out", "The app keeps logging me out in the middle of deliveries."),
        ("KYC status not updating", "I uploaded all my documents but the status still shows pending."),
    ),
    TicketCategory.ACCIDENT: (
        ("Minor accident during delivery", "I had a fall on a wet road; the bike's mirror is broken."),
    ),
    TicketCategory.OTHER: (("Change of city", "I am moving to another city and want to continue riding there."),),
}
RESOLUTIONS = (
    "Checked with the payments team; resolved and confirmed with the rider on call.",
    "Explained the process to the rider; no further action needed.",
    "Fixed in the latest app version; rider confirmed.",
)
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O on Indian plates


# --- Natural keys ---------------------------------------------------------------------------------


def rider_mobile(index: int) -> str:
    """The demo rider's mobile (and username): a function of its index alone, so reruns find it."""
    return f"+9170{index:08d}"


def rider_order_ref(index: int, number: int) -> str:
    return f"DEMO-{index:06d}-{number:02d}"


def queue_order_ref(city_code: str, kind: str, number: int) -> str:
    return f"DEMO-{city_code}-{kind}{number:04d}"


_PLATE_SPACE = 8 * len(PLATE_LETTERS) ** 2 * 9999
_PLATE_STRIDE = 1_000_003  # prime, coprime with the space: index -> plate is a bijection


def vehicle_registration(city: CitySpec, index: int) -> str:
    """A plausible plate (``KA01AB1234``) unique per rider index across every city."""
    x = (index * _PLATE_STRIDE) % _PLATE_SPACE
    x, number = divmod(x, 9999)
    x, letters = divmod(x, len(PLATE_LETTERS) ** 2)
    rto = city.rto_codes[x % len(city.rto_codes)]
    first, second = divmod(letters, len(PLATE_LETTERS))
    return f"{city.state}{rto}{PLATE_LETTERS[first]}{PLATE_LETTERS[second]}{number + 1:04d}"


# --- Small generated documents --------------------------------------------------------------------

_DOC_COLOURS: dict[str, tuple[int, int, int]] = {
    KycDocumentType.PAN: (30, 90, 160),
    KycDocumentType.AADHAAR: (200, 120, 30),
    KycDocumentType.DL: (40, 140, 90),
    KycDocumentType.RC: (120, 60, 150),
    KycDocumentType.SELFIE: (180, 160, 140),
}
_doc_bytes_cache: dict[str, tuple[bytes, str, str]] = {}


def demo_document(doc_type: str) -> tuple[bytes, str, str]:
    """``(content, content_type, extension)`` of a tiny stand-in scan: a PNG card, or a one-page PDF."""
    if doc_type not in _doc_bytes_cache:
        if doc_type == KycDocumentType.PROOF:
            content = (
                b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
                b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\n"
                b"trailer<</Root 1 0 R>>\n%%EOF\n"
            )
            _doc_bytes_cache[doc_type] = (content, "application/pdf", ".pdf")
        else:
            image = Image.new("RGB", (96, 60), _DOC_COLOURS.get(doc_type, (90, 90, 90)))
            draw = ImageDraw.Draw(image)
            draw.rectangle((4, 4, 91, 55), outline=(255, 255, 255))
            draw.text((10, 22), f"DEMO {doc_type}", fill=(255, 255, 255))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
            _doc_bytes_cache[doc_type] = (buffer.getvalue(), "image/png", ".png")
    return _doc_bytes_cache[doc_type]


# --- Plans: what a rider's world looks like, decided before anything is written ---------------------


@dataclass(frozen=True)
class Profile:
    status: str
    kyc: str
    duty: str
    active_order: str | None = None
    past_orders: tuple[str, ...] = ()
    alert: str | None = None
    ticket: str | None = None
    withdrawals: tuple[str, ...] | None = None


_A, _S, _O = RiderStatus.ACTIVE, RiderStatus.SUSPENDED, RiderStatus.OFFBOARDED
_OK, _PEND, _REJ = KycStatus.APPROVED, KycStatus.PENDING, KycStatus.REJECTED
_ON, _OFF, _AUTO = DutyStatus.ON, DutyStatus.OFF, DutyStatus.AUTO_OFF

#: The first riders are dealt these profiles so that even a tiny world has every state in it.
COVERAGE: tuple[Profile, ...] = (
    Profile(_A, _OK, _ON, active_order=OrderStatus.ASSIGNED, alert=AlertStatus.OPEN, ticket=TicketStatus.OPEN),
    Profile(
        _A,
        _OK,
        _OFF,
        past_orders=(OrderStatus.CANCELLED,),
        ticket=TicketStatus.IN_PROGRESS,
        withdrawals=(WithdrawalStatus.PAID, WithdrawalStatus.REJECTED, WithdrawalStatus.REQUESTED),
    ),
    Profile(_A, _PEND, _OFF),
    Profile(_A, _OK, _ON, active_order=OrderStatus.ACCEPTED, alert=AlertStatus.ACKNOWLEDGED),
    Profile(_S, _OK, _OFF, ticket=TicketStatus.RESOLVED),
    Profile(_A, _OK, _AUTO, past_orders=(OrderStatus.FAILED,), withdrawals=(WithdrawalStatus.PAID,)),
    Profile(_A, _REJ, _OFF, ticket=TicketStatus.CLOSED),
    Profile(_O, _OK, _OFF, alert=AlertStatus.RESOLVED),
    Profile(_A, _OK, _ON, active_order=OrderStatus.PICKED_UP),
    Profile(_A, _OK, _OFF, withdrawals=(WithdrawalStatus.APPROVED,)),
    Profile(_A, _PEND, _OFF),
    Profile(_A, _OK, _ON),
)


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _pick_int(rng: random.Random, weights: dict[int, int]) -> int:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _paise(rupees: float, step: int = 100) -> int:
    return max(step, round(rupees * 100 / step) * step)


@dataclass
class EventPlan:
    from_status: str
    to_status: str
    at: datetime
    actor: str  # "partner", "ops", "rider" or "" (the system)
    position: LatLon | None = None
    note: str = ""
    with_rider: bool = True


@dataclass(frozen=True)
class Geometry:
    """Where an order goes and what it is worth."""

    city_code: str
    pickup: LatLon
    drop: LatLon
    pickup_address: str
    drop_address: str
    fee_paise: int
    cod_paise: int
    distance_m: int
    metadata: dict[str, object]
    otp: str


@dataclass
class OrderPlan:
    ref: str
    status: str
    geo: Geometry
    created_at: datetime
    events: list[EventPlan] = field(default_factory=list)
    assigned_at: datetime | None = None
    picked_up_at: datetime | None = None
    delivered_at: datetime | None = None
    cancel_reason: str = ""
    failure_reason: str = ""
    is_flagged: bool = False
    has_rider: bool = True
    rating: tuple[int, str, datetime] | None = None

    @property
    def updated_at(self) -> datetime:
        return self.events[-1].at


@dataclass
class DocPlan:
    doc_type: str
    number: str
    status: str
    uploaded_at: datetime
    reviewed_at: datetime | None = None
    reviewer: str = ""
    rejection_reason: str = ""


@dataclass
class ShiftPlan:
    started_at: datetime
    ended_at: datetime | None
    end_reason: str = ""


@dataclass
class TicketPlan:
    category: str
    priority: str
    subject: str
    body: str
    status: str
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    assigned: str
    resolution: str
    order_ref: str | None


@dataclass
class AlertPlan:
    status: str
    position: LatLon | None
    message: str
    raised_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolution_note: str


@dataclass
class WithdrawalPlan:
    status: str
    fraction: float
    requested_at: datetime
    decided_at: datetime
    payout_reference: str
    rejection_reason: str


@dataclass
class RiderPlan:
    index: int
    mobile: str
    first_name: str
    last_name: str
    city: CitySpec
    profile: Profile
    joined_at: datetime
    language: str
    emergency_name: str
    emergency_mobile: str
    vehicle_kind: str
    registration: str
    order_capacity: int
    load_capacity_kg: int
    has_vehicle: bool
    kyc_reviewed_at: datetime | None = None
    kyc_rejection_reason: str = ""
    suspension_reason: str = ""
    duty_changed_at: datetime | None = None
    docs: list[DocPlan] = field(default_factory=list)
    shifts: list[ShiftPlan] = field(default_factory=list)
    orders: list[OrderPlan] = field(default_factory=list)
    tickets: list[TicketPlan] = field(default_factory=list)
    alerts: list[AlertPlan] = field(default_factory=list)
    incentives: list[tuple[int, str]] = field(default_factory=list)
    cod_deposit_before: datetime | None = None
    withdrawals: list[WithdrawalPlan] = field(default_factory=list)
    trail: list[tuple[datetime, Point]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class RiderPlanner:
    """Decides one rider's whole world from ``(seed, index)``; writes nothing."""

    def __init__(self, *, seed: int, now: datetime, orders_per_rider: int) -> None:
        self.seed = seed
        self.now = now
        self.orders_per_rider = orders_per_rider

    def plan(self, index: int) -> RiderPlan:
        rng = random.Random(f"fleetops-demo:{self.seed}:{index}")
        profile = COVERAGE[index] if index < len(COVERAGE) else self._random_profile(rng)
        city = CITIES[index % len(CITIES)] if index < len(COVERAGE) else self._random_city(rng)
        kind = _pick(rng, {VehicleKind.BIKE: 70, VehicleKind.EV: 22, VehicleKind.TRUCK: 8})
        capacity = rng.randint(4, 8) if kind == VehicleKind.TRUCK else rng.randint(1, 3)
        load = rng.choice((500, 750, 1000, 1500)) if kind == VehicleKind.TRUCK else rng.choice((15, 20, 25))
        plan = RiderPlan(
            index=index,
            mobile=rider_mobile(index),
            first_name=rng.choice(FIRST_NAMES),
            last_name=rng.choice(SURNAMES),
            city=city,
            profile=profile,
            joined_at=self.now,
            language=city.language if rng.random() < 0.5 else rng.choice(("en", "hi")),
            emergency_name=f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
            emergency_mobile=f"+919{rng.randrange(10**9):09d}",
            vehicle_kind=kind,
            registration=vehicle_registration(city, index),
            order_capacity=capacity,
            load_capacity_kg=load,
            has_vehicle=profile.status != RiderStatus.OFFBOARDED,
        )
        if profile.kyc == KycStatus.APPROVED:
            self._plan_worker(plan, rng)
        else:
            self._plan_applicant(plan, rng)
        return plan

    # Profiles

    @staticmethod
    def _random_city(rng: random.Random) -> CitySpec:
        return rng.choices(CITIES, weights=[c.weight for c in CITIES])[0]

    @staticmethod
    def _random_profile(rng: random.Random) -> Profile:
        status = _pick(rng, {_A: 86, _S: 7, _O: 7})
        kyc = _pick(rng, {_OK: 78, _PEND: 14, _REJ: 8}) if status == _A else _OK
        duty = _pick(rng, {_ON: 48, _OFF: 42, _AUTO: 10}) if (status, kyc) == (_A, _OK) else _OFF
        alert = None
        if duty == _ON and rng.random() < 0.06:
            alert = AlertStatus.OPEN if rng.random() < 0.5 else AlertStatus.ACKNOWLEDGED
        elif kyc == _OK and rng.random() < 0.04:
            alert = AlertStatus.RESOLVED
        ticket = None
        if rng.random() < 0.22:
            ticket = _pick(
                rng,
                {
                    TicketStatus.OPEN: 30,
                    TicketStatus.IN_PROGRESS: 20,
                    TicketStatus.RESOLVED: 30,
                    TicketStatus.CLOSED: 20,
                },
            )
        return Profile(status, kyc, duty, alert=alert, ticket=ticket)

    # Applicants: KYC pending or rejected, never worked

    def _plan_applicant(self, plan: RiderPlan, rng: random.Random) -> None:
        if plan.profile.kyc == KycStatus.PENDING:
            plan.joined_at = self.now - timedelta(hours=rng.uniform(2, 7 * 24))
            types = list(KycDocumentType.values)
            rng.shuffle(types)
            for doc_type in types[: rng.randint(3, len(types))]:
                plan.docs.append(self._doc(plan, doc_type, ReviewStatus.PENDING, rng, plan.joined_at))
        else:
            plan.joined_at = self.now - timedelta(days=rng.uniform(3, 20))
            review_at = plan.joined_at + timedelta(hours=rng.uniform(4, 48))
            rejected = rng.sample(list(KycDocumentType.values), k=rng.randint(1, 2))
            reasons = []
            for doc_type in KycDocumentType.values:
                if doc_type in rejected:
                    doc = self._doc(plan, doc_type, ReviewStatus.REJECTED, rng, plan.joined_at, review_at)
                    doc.rejection_reason = rng.choice(DOC_REJECTIONS)
                    reasons.append(f"{KycDocumentType(doc_type).label}: {doc.rejection_reason}")
                    plan.docs.append(doc)
                    if rng.random() < 0.4:
                        # Re-uploaded after the rejection, waiting for review again.
                        plan.docs.append(self._doc(plan, doc_type, ReviewStatus.PENDING, rng, review_at))
                else:
                    plan.docs.append(self._doc(plan, doc_type, ReviewStatus.APPROVED, rng, plan.joined_at, review_at))
            plan.kyc_reviewed_at = review_at
            plan.kyc_rejection_reason = "; ".join(reasons)[:255]
        if plan.profile.ticket:
            category = TicketCategory.APP
            plan.tickets.append(self._ticket(plan, rng, category, plan.profile.ticket, plan.joined_at, None))

    def _doc(
        self,
        plan: RiderPlan,
        doc_type: str,
        status: str,
        rng: random.Random,
        after: datetime,
        reviewed_at: datetime | None = None,
    ) -> DocPlan:
        uploaded_at = after + timedelta(minutes=rng.uniform(1, 90))
        if reviewed_at is not None:
            uploaded_at = min(uploaded_at, reviewed_at - timedelta(minutes=5))
        uploaded_at = min(uploaded_at, self.now - timedelta(minutes=1))
        number = ""
        if doc_type == KycDocumentType.PAN:
            letters = "".join(rng.choice(PLATE_LETTERS) for _ in range(3))
            number = f"{letters}P{plan.last_name[0]}{rng.randrange(10_000):04d}{rng.choice(PLATE_LETTERS)}"
        elif doc_type == KycDocumentType.AADHAAR:
            number = f"XXXXXXXX{rng.randrange(10_000):04d}"  # masked, as the regulations ask
        elif doc_type == KycDocumentType.DL:
            number = f"{plan.city.state}{plan.city.rto_codes[0]}{rng.randint(2008, 2023)}{rng.randrange(10**7):07d}"
        elif doc_type == KycDocumentType.RC:
            number = plan.registration
        return DocPlan(
            doc_type=doc_type,
            number=number,
            status=status,
            uploaded_at=uploaded_at,
            reviewed_at=reviewed_at if status != ReviewStatus.PENDING else None,
            reviewer=rng.choice(OPS_USERS)[0] if status != ReviewStatus.PENDING else "",
        )

    # Workers: KYC approved, with shifts, orders, money and maybe incidents

    def _plan_worker(self, plan: RiderPlan, rng: random.Random) -> None:
        profile, now = plan.profile, self.now
        history_end = now
        if profile.status == RiderStatus.SUSPENDED:
            history_end = now - timedelta(days=rng.uniform(1, 6))
            plan.suspension_reason = rng.choice(SUSPENSION_REASONS)
        elif profile.status == RiderStatus.OFFBOARDED:
            history_end = now - timedelta(days=rng.uniform(10, 40))
        window_start = history_end - timedelta(days=HISTORY_DAYS)
        plan.joined_at = window_start - timedelta(days=rng.uniform(5, 150))
        plan.kyc_reviewed_at = plan.joined_at + timedelta(hours=rng.uniform(3, 72))
        for doc_type in KycDocumentType.values:
            plan.docs.append(
                self._doc(plan, doc_type, ReviewStatus.APPROVED, rng, plan.joined_at, plan.kyc_reviewed_at)
            )

        # The newest shift first, then walk back in time with days off in between.
        open_start: datetime | None = None
        anchor = history_end - timedelta(hours=rng.uniform(1, 20))
        if profile.duty == DutyStatus.ON:
            open_start = now - timedelta(hours=rng.uniform(0.9, 5))
            plan.shifts.append(ShiftPlan(open_start, None))
            plan.duty_changed_at = anchor = open_start
        elif profile.duty == DutyStatus.AUTO_OFF:
            reason: str = DutyEndReason.STALE if rng.random() < 0.6 else DutyEndReason.HOURS
            end = now - timedelta(hours=rng.uniform(0.25, 3))
            length = rng.uniform(10, 12) if reason == DutyEndReason.HOURS else rng.uniform(2, 7)
            plan.shifts.append(ShiftPlan(end - timedelta(hours=length), end, reason))
            plan.duty_changed_at, anchor = end, end - timedelta(hours=length)
        elif profile.status == RiderStatus.SUSPENDED:
            start = history_end - timedelta(hours=rng.uniform(2, 6))
            plan.shifts.append(ShiftPlan(start, history_end, DutyEndReason.SUSPENDED))
            plan.duty_changed_at, anchor = history_end, start
        while True:
            reason = _pick(rng, {DutyEndReason.MANUAL: 86, DutyEndReason.STALE: 8, DutyEndReason.HOURS: 6})
            end = anchor - timedelta(hours=rng.uniform(8, 40))
            length = rng.uniform(10, 12) if reason == DutyEndReason.HOURS else rng.uniform(3, 9)
            start = end - timedelta(hours=length)
            if start < window_start:
                break
            plan.shifts.append(ShiftPlan(start, end, reason))
            anchor = start
        plan.shifts.sort(key=lambda s: s.started_at)
        if plan.duty_changed_at is None:
            plan.duty_changed_at = max(s.ended_at for s in plan.shifts if s.ended_at is not None)

        closed = [s for s in plan.shifts if s.ended_at is not None]
        statuses = list(profile.past_orders) if closed else []
        while closed and len(statuses) < self.orders_per_rider:
            statuses.append(_pick(rng, {OrderStatus.DELIVERED: 82, OrderStatus.CANCELLED: 10, OrderStatus.FAILED: 8}))
        past: list[tuple[datetime, str]] = []
        for status in statuses[: self.orders_per_rider]:
            shift = rng.choices(
                closed, weights=[(s.ended_at - s.started_at).total_seconds() for s in closed if s.ended_at is not None]
            )[0]
            assert shift.ended_at is not None
            room = max(0.0, (shift.ended_at - shift.started_at).total_seconds() - 70 * 60)
            past.append((shift.started_at + timedelta(seconds=rng.uniform(0, room)), status))
        past.sort()
        for number, (created_at, status) in enumerate(past, start=1):
            plan.orders.append(self._past_order(plan, rng, number, created_at, status))

        if open_start is not None:
            self._plan_on_duty(plan, rng, open_start, len(plan.orders) + 1)

        # Money: incentives, a COD hand-in, withdrawals (sized at posting time from the balance).
        for _ in range(_pick_int(rng, {0: 30, 1: 45, 2: 25}) or (1 if profile.withdrawals else 0)):
            plan.incentives.append((_paise(rng.uniform(100, 500), 1000), rng.choice(INCENTIVE_MEMOS)))
        if rng.random() < 0.75:
            plan.cod_deposit_before = history_end - timedelta(hours=rng.uniform(12, 36))
        wanted = profile.withdrawals
        if wanted is None:
            count = _pick_int(rng, {0: 35, 1: 35, 2: 20, 3: 10})
            early = [_pick(rng, {WithdrawalStatus.PAID: 80, WithdrawalStatus.REJECTED: 20}) for _ in range(count - 1)]
            last = _pick(
                rng,
                {
                    WithdrawalStatus.PAID: 45,
                    WithdrawalStatus.REQUESTED: 25,
                    WithdrawalStatus.APPROVED: 15,
                    WithdrawalStatus.REJECTED: 15,
                },
            )
            wanted = (*early, last) if count else ()
        for position, status in enumerate(wanted):
            pending = status in (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED)
            if pending:
                requested_at = history_end - timedelta(hours=rng.uniform(1, 20))
            else:
                days_back = HISTORY_DAYS * (len(wanted) - position) / (len(wanted) + 1)
                requested_at = history_end - timedelta(days=days_back, hours=rng.uniform(0, 12))
            plan.withdrawals.append(
                WithdrawalPlan(
                    status=status,
                    fraction=rng.uniform(0.25, 0.6),
                    requested_at=requested_at,
                    decided_at=min(now, requested_at + timedelta(hours=rng.uniform(2, 30))),
                    payout_reference=f"UTR{rng.randrange(10**12):012d}",
                    rejection_reason=rng.choice(WITHDRAWAL_REJECTIONS),
                )
            )

        if profile.ticket:
            category = _pick(
                rng,
                {
                    TicketCategory.PAYMENT: 30,
                    TicketCategory.ORDER: 25,
                    TicketCategory.VEHICLE: 15,
                    TicketCategory.APP: 15,
                    TicketCategory.ACCIDENT: 5,
                    TicketCategory.OTHER: 10,
                },
            )
            order_ref = (
                plan.orders[0].ref
                if plan.orders and category in (TicketCategory.PAYMENT, TicketCategory.ORDER)
                else None
            )
            plan.tickets.append(self._ticket(plan, rng, category, profile.ticket, window_start, order_ref))
        if profile.alert == AlertStatus.RESOLVED and closed:
            shift = rng.choice(closed)
            assert shift.ended_at is not None
            raised = shift.started_at + (shift.ended_at - shift.started_at) * rng.uniform(0.1, 0.8)
            acknowledged = raised + timedelta(minutes=rng.uniform(1, 4))
            plan.alerts.append(
                AlertPlan(
                    status=AlertStatus.RESOLVED,
                    position=random_point_within(plan.city.center, 6000, rng),
                    message=rng.choice(ALERT_MESSAGES),
                    raised_at=raised,
                    acknowledged_at=acknowledged,
                    resolved_at=acknowledged + timedelta(minutes=rng.uniform(10, 60)),
                    resolution_note="Called the rider; safe, no injury. Vehicle picked up by the hub.",
                )
            )

    @staticmethod
    def geometry(city: CitySpec, vehicle_kind: str, rng: random.Random, pickup: LatLon | None = None) -> Geometry:
        """A pickup (random in the city unless given), a drop a plausible ride away, and the money."""
        pickup = pickup or random_point_within(city.center, 6000, rng)
        truck = vehicle_kind == VehicleKind.TRUCK
        drop = destination(pickup, rng.uniform(0, 360), rng.uniform(3000, 15000) if truck else rng.uniform(800, 6000))
        return RiderPlanner.route(city, vehicle_kind, rng, pickup, drop)

    @staticmethod
    def route(city: CitySpec, vehicle_kind: str, rng: random.Random, pickup: LatLon, drop: LatLon) -> Geometry:
        truck = vehicle_kind == VehicleKind.TRUCK
        distance_m = int(haversine_m(pickup, drop) * rng.uniform(1.2, 1.4))
        km = distance_m / 1000
        fee = _paise(200 + 15 * km + rng.uniform(0, 60)) if truck else _paise(20 + 6 * km + rng.uniform(0, 10))
        is_cod = rng.random() < 0.35
        return Geometry(
            city_code=city.code,
            pickup=LatLon(round(pickup.lat, 6), round(pickup.lon, 6)),
            drop=LatLon(round(drop.lat, 6), round(drop.lon, 6)),
            pickup_address=f"{rng.choice(SHOPS)}, {rng.choice(city.localities)}, {city.name}",
            drop_address=(
                f"Flat {rng.randint(1, 12)}{rng.randint(1, 20):02d}, {rng.choice(BUILDINGS)}, "
                f"{rng.choice(city.localities)}, {city.name}"
            ),
            fee_paise=fee,
            cod_paise=_paise(rng.uniform(150, 2500)) if is_cod else 0,
            distance_m=distance_m,
            metadata={
                "demo": True,
                "partner": rng.choice(PARTNERS),
                "items": rng.randint(1, 6),
                "payment": "COD" if is_cod else "PREPAID",
                "weight_kg": round(rng.uniform(50, 900) if truck else rng.uniform(0.2, 8), 1),
            },
            otp=f"{rng.randrange(10_000):04d}",
        )

    def _past_order(
        self, plan: RiderPlan, rng: random.Random, number: int, created_at: datetime, status: str
    ) -> OrderPlan:
        geo = self.geometry(plan.city, plan.vehicle_kind, rng)
        order = OrderPlan(ref=rider_order_ref(plan.index, number), status=status, geo=geo, created_at=created_at)
        near_pickup = destination(geo.pickup, rng.uniform(0, 360), rng.uniform(200, 2500))
        t = created_at
        order.events.append(EventPlan("", OrderStatus.CREATED, t, "partner", with_rider=False))
        t += timedelta(seconds=rng.uniform(30, 240))
        order.assigned_at = t
        auto = rng.random() < 0.6
        order.events.append(
            EventPlan(
                OrderStatus.CREATED,
                OrderStatus.ASSIGNED,
                t,
                "" if auto else "ops",
                near_pickup,
                "auto-assigned to the nearest rider" if auto else "assigned by dispatcher",
            )
        )
        t += timedelta(seconds=rng.uniform(10, 120))
        if status == OrderStatus.CANCELLED:
            previous: str = OrderStatus.ASSIGNED
            if rng.random() < 0.6:
                order.events.append(EventPlan(OrderStatus.ASSIGNED, OrderStatus.ACCEPTED, t, "rider", near_pickup))
                previous = OrderStatus.ACCEPTED
            t += timedelta(minutes=rng.uniform(1, 8))
            order.cancel_reason = rng.choice(CANCEL_REASONS)
            order.events.append(EventPlan(previous, OrderStatus.CANCELLED, t, "partner", None, order.cancel_reason))
            return order
        order.events.append(EventPlan(OrderStatus.ASSIGNED, OrderStatus.ACCEPTED, t, "rider", near_pickup))
        t += timedelta(minutes=rng.uniform(5, 15))
        order.picked_up_at = t
        order.events.append(EventPlan(OrderStatus.ACCEPTED, OrderStatus.PICKED_UP, t, "rider", geo.pickup))
        t += timedelta(minutes=rng.uniform(8, 30))
        if status == OrderStatus.FAILED:
            order.failure_reason = rng.choice(FAILURE_REASONS)
            order.events.append(
                EventPlan(OrderStatus.PICKED_UP, OrderStatus.FAILED, t, "rider", geo.drop, order.failure_reason)
            )
            return order
        order.delivered_at = t
        order.events.append(EventPlan(OrderStatus.PICKED_UP, OrderStatus.DELIVERED, t, "rider", geo.drop))
        if rng.random() < 0.6:
            stars = _pick_int(rng, {5: 55, 4: 28, 3: 10, 2: 4, 1: 3})
            comment = rng.choice(RATING_COMMENTS) if rng.random() < 0.3 else ""
            rated_at = min(self.now - timedelta(minutes=1), t + timedelta(minutes=rng.uniform(5, 360)))
            order.rating = (stars, comment, rated_at)
        return order

    def _plan_on_duty(self, plan: RiderPlan, rng: random.Random, open_start: datetime, number: int) -> None:
        """The last half hour of GPS, then active orders that fit it, and an SOS if the profile has one."""
        now = self.now
        start_at = max(open_start, now - timedelta(minutes=TRAIL_MINUTES))
        count = int((now - start_at).total_seconds() // TRAIL_INTERVAL_S)
        mover = Mover(
            position=random_point_within(plan.city.center, 4000, rng),
            home=plan.city.center,
            cruise_kmh=cruise_kmh_for(plan.vehicle_kind, rng),
            battery_pct=rng.uniform(55, 100),
        )
        mover, fixes = mover_trail(mover, start=start_at, interval_s=TRAIL_INTERVAL_S, count=count, rng=rng)
        plan.trail = [
            (
                at,
                Point(
                    recorded_at=at,
                    lat=f.lat,
                    lon=f.lon,
                    speed_kmh=f.speed_kmh,
                    heading_deg=f.heading_deg,
                    accuracy_m=f.accuracy_m,
                    battery_pct=f.battery_pct,
                ),
            )
            for at, f in fixes
        ]
        here = mover.position
        heading_to = mover.waypoints[0].position if mover.waypoints else None

        profile = plan.profile
        n_active = 1 if profile.active_order else _pick_int(rng, {0: 45, 1: 38, 2: 12, 3: 5})
        n_active = min(n_active, plan.order_capacity)
        for k in range(n_active):
            status = (
                profile.active_order
                if k == 0 and profile.active_order
                else _pick(rng, {OrderStatus.ASSIGNED: 30, OrderStatus.ACCEPTED: 30, OrderStatus.PICKED_UP: 40})
            )
            if status == OrderStatus.PICKED_UP and len(fixes) > 40:
                back = rng.randint(30, min(90, len(fixes) - 10))
                picked_at, fix = fixes[-back]
                drop = (
                    heading_to
                    if (k == 0 and heading_to)
                    else destination(here, rng.uniform(0, 360), rng.uniform(1000, 5000))
                )
                geo = self.route(plan.city, plan.vehicle_kind, rng, LatLon(fix.lat, fix.lon), drop)
                created_at = picked_at - timedelta(minutes=rng.uniform(8, 20))
            else:
                if status == OrderStatus.PICKED_UP:
                    status = OrderStatus.ACCEPTED
                pickup = (
                    heading_to
                    if (k == 0 and heading_to)
                    else destination(here, rng.uniform(0, 360), rng.uniform(400, 3000))
                )
                geo = self.geometry(plan.city, plan.vehicle_kind, rng, pickup)
                created_at = now - timedelta(minutes=rng.uniform(3, 10))
                picked_at = now
            order = OrderPlan(
                ref=rider_order_ref(plan.index, number + k), status=status, geo=geo, created_at=created_at
            )
            order.events.append(EventPlan("", OrderStatus.CREATED, created_at, "partner", with_rider=False))
            t = created_at + timedelta(seconds=rng.uniform(30, 150))
            order.assigned_at = t
            order.events.append(
                EventPlan(OrderStatus.CREATED, OrderStatus.ASSIGNED, t, "", here, "auto-assigned to the nearest rider")
            )
            if status in (OrderStatus.ACCEPTED, OrderStatus.PICKED_UP):
                t += timedelta(seconds=rng.uniform(10, 90))
                order.events.append(EventPlan(OrderStatus.ASSIGNED, OrderStatus.ACCEPTED, t, "rider", here))
            if status == OrderStatus.PICKED_UP:
                order.picked_up_at = picked_at
                order.events.append(
                    EventPlan(OrderStatus.ACCEPTED, OrderStatus.PICKED_UP, picked_at, "rider", geo.pickup)
                )
            plan.orders.append(order)

        if profile.alert in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED) and plan.trail:
            last = plan.trail[-1][1]
            if profile.alert == AlertStatus.OPEN:
                raised, acknowledged = now - timedelta(minutes=rng.uniform(1, 6)), None
            else:
                raised = now - timedelta(minutes=rng.uniform(8, 25))
                acknowledged = raised + timedelta(minutes=rng.uniform(0.5, 3))
            plan.alerts.append(
                AlertPlan(
                    status=profile.alert,
                    position=LatLon(last.lat, last.lon),
                    message=rng.choice(ALERT_MESSAGES),
                    raised_at=raised,
                    acknowledged_at=acknowledged,
                    resolved_at=None,
                    resolution_note="",
                )
            )

    def _ticket(
        self,
        plan: RiderPlan,
        rng: random.Random,
        category: str,
        status: str,
        after: datetime,
        order_ref: str | None,
    ) -> TicketPlan:
        subject, body = rng.choice(TICKETS[category])
        span = max(1.0, (self.now - after).total_seconds() - 3 * 3600)
        created = after + timedelta(seconds=rng.uniform(0, span))
        if status in (TicketStatus.OPEN, TicketStatus.IN_PROGRESS):
            created = max(created, self.now - timedelta(days=2))
        resolved = None
        updated = created
        if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            resolved = min(self.now - timedelta(minutes=5), created + timedelta(hours=rng.uniform(2, 72)))
            updated = resolved
        elif status == TicketStatus.IN_PROGRESS:
            updated = min(self.now, created + timedelta(minutes=rng.uniform(10, 240)))
        priorities: dict[str, str] = {
            TicketCategory.ACCIDENT: TicketPriority.URGENT,
            TicketCategory.PAYMENT: TicketPriority.HIGH,
        }
        priority = priorities.get(category) or rng.choice((TicketPriority.LOW, TicketPriority.NORMAL))
        return TicketPlan(
            category=category,
            priority=priority,
            subject=subject,
            body=body,
            status=status,
            created_at=created,
            updated_at=updated,
            resolved_at=resolved,
            assigned="" if status == TicketStatus.OPEN else rng.choice(OPS_USERS)[0],
            resolution=rng.choice(RESOLUTIONS) if resolved else "",
            order_ref=order_ref,
        )


# --- Writing ----------------------------------------------------------------------------------------


def backdate(model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple[int, Sequence[datetime]]]) -> None:
    """Sets ``auto_now``/``auto_now_add`` columns to historical values, one UPDATE for all rows.

    ``bulk_create`` stamps those columns with the current time; history needs its own times.
    """
    if not rows:
        return
    names = ("id", *columns)
    query = sql.SQL("UPDATE {table} AS t SET {sets} FROM unnest({arrays}) AS v({names}) WHERE t.id = v.id").format(
        table=sql.Identifier(model._meta.db_table),
        sets=sql.SQL(", ").join(sql.SQL("{0} = v.{0}").format(sql.Identifier(c)) for c in columns),
        arrays=sql.SQL(", ").join([sql.SQL("%s::bigint[]")] + [sql.SQL("%s::timestamptz[]")] * len(columns)),
        names=sql.SQL(", ").join(sql.Identifier(n) for n in names),
    )
    params: list[list[object]] = [[pk for pk, _ in rows]]
    params += [[values[i] for _, values in rows] for i in range(len(columns))]
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection), params)


def ensure_location_partition(at: datetime) -> None:
    """Creates the location log's partition for the month of ``at`` if it is missing."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT fleet_locationlog_partition_ensure(%s)", [at])


class DemoSeeder:
    """Builds the demo world; ``run`` returns what it created, by kind."""

    def __init__(
        self,
        *,
        riders: int,
        orders_per_rider: int = 8,
        seed: int = 42,
        now: datetime | None = None,
        out: Callable[[str], None] = lambda line: None,
        batch_size: int = BATCH_RIDERS,
    ) -> None:
        if not 0 <= orders_per_rider <= MAX_ORDERS_PER_RIDER:
            raise ValueError(f"orders per rider must be between 0 and {MAX_ORDERS_PER_RIDER}")
        self.riders = riders
        self.orders_per_rider = orders_per_rider
        self.seed = seed
        self.now = (now or timezone.now()).replace(microsecond=0)
        self.out = out
        self.batch_size = batch_size
        self.created: Counter[str] = Counter()
        self.planner = RiderPlanner(seed=seed, now=self.now, orders_per_rider=orders_per_rider)
        self.cities: dict[str, City] = {}
        self.staff: dict[str, User] = {}
        self._demo_hash: str | None = None

    def run(self) -> Counter[str]:
        started = time.monotonic()
        self._seed_cities()
        self._seed_staff()
        ensure_location_partition(self.now - timedelta(minutes=TRAIL_MINUTES + 1))
        done = 0
        for first in range(0, self.riders, self.batch_size):
            indices = range(first, min(first + self.batch_size, self.riders))
            new = self._seed_batch(indices)
            done += len(indices)
            self.out(
                f"  riders {done}/{self.riders}: {new} new in this batch; so far {self.created['riders']} riders, "
                f"{self.created['orders']} orders, {self.created['ledger entries']} ledger entries, "
                f"{self.created['gps points']} GPS points ({time.monotonic() - started:.1f}s)"
            )
        self._seed_queue_orders()
        return self.created

    # Cities and staff

    def _seed_cities(self) -> None:
        new = 0
        for spec in CITIES:
            city, created = City.objects.get_or_create(
                code=spec.code,
                defaults={"name": spec.name, "center_lat": spec.center.lat, "center_lon": spec.center.lon},
            )
            self.cities[spec.code] = city
            new += created
        self.created["cities"] += new
        self.out(f"Cities: {new} created, {len(CITIES) - new} already there")

    def _seed_staff(self) -> None:
        user_model = get_user_model()
        new = 0
        for username, first, last in (*OPS_USERS, PARTNER_USER):
            user, created = user_model.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "is_staff": username != PARTNER_USER[0],
                    "email": f"{username}@demo.fleetops.invalid",
                    "password": make_password(None),
                },
            )
            self.staff[username] = user
            new += created
        # The partner account may call the partner order API: it is a member of the partners group.
        partners, _ = Group.objects.get_or_create(name=settings.PARTNER_GROUP)
        self.staff[PARTNER_USER[0]].groups.add(partners)
        self.created["staff users"] += new
        self.out(f"Ops and partner users: {new} created, {len(self.staff) - new} already there")

    def _actor_id(self, actor: str, rider_user_id: int) -> int | None:
        if actor == "rider":
            return rider_user_id
        if actor == "partner":
            return self.staff[PARTNER_USER[0]].pk
        if actor == "ops":
            return self.staff[OPS_USERS[0][0]].pk
        return None

    # One batch of riders, in one transaction

    def _seed_batch(self, indices: range) -> int:
        mobiles = {rider_mobile(i): i for i in indices}
        with transaction.atomic():
            existing = set(Rider.objects.filter(mobile__in=mobiles).values_list("mobile", flat=True))
            plans = [self.planner.plan(i) for m, i in mobiles.items() if m not in existing]
            if not plans:
                return 0
            riders = self._write_riders(plans)
            self._write_documents(plans, riders)
            self._write_shifts(plans, riders)
            orders = self._write_orders(plans, riders)
            self._write_incidents(plans, riders, orders)
            self._write_ledger(plans, riders, orders)
            self._write_trails(plans, riders)
        return len(plans)

    def _write_riders(self, plans: list[RiderPlan]) -> dict[int, Rider]:
        user_model = get_user_model()
        taken = {
            u.get_username(): u
            for u in user_model.objects.filter(username__in=[p.mobile for p in plans]).select_related("rider")
            if not hasattr(u, "rider")
        }
        new_users = []
        for plan in plans:
            if plan.mobile in taken:
                continue
            password = self._demo_password_hash() if plan.index in DEMO_LOGIN_INDICES else make_password(None)
            new_users.append(
                user_model(
                    username=plan.mobile,
                    first_name=plan.first_name,
                    last_name=plan.last_name,
                    password=password,
                    is_active=plan.profile.status != RiderStatus.OFFBOARDED,
                    date_joined=plan.joined_at,
                )
            )
        user_model.objects.bulk_create(new_users)
        self.created["users"] += len(new_users)
        users = {**taken, **{u.get_username(): u for u in new_users}}

        vehicles = Vehicle.objects.bulk_create(
            [
                Vehicle(
                    kind=p.vehicle_kind,
                    registration=p.registration,
                    city=self.cities[p.city.code],
                    order_capacity=p.order_capacity,
                    load_capacity_kg=p.load_capacity_kg,
                )
                for p in plans
            ]
        )
        self.created["vehicles"] += len(vehicles)
        riders = Rider.objects.bulk_create(
            [
                Rider(
                    user=users[p.mobile],
                    mobile=p.mobile,
                    name=p.name,
                    city=self.cities[p.city.code],
                    status=p.profile.status,
                    kyc_status=p.profile.kyc,
                    kyc_reviewed_at=p.kyc_reviewed_at,
                    kyc_rejection_reason=p.kyc_rejection_reason,
                    duty_status=p.profile.duty,
                    duty_changed_at=p.duty_changed_at,
                    vehicle=vehicle if p.has_vehicle else None,
                    language=p.language,
                    emergency_contact_name=p.emergency_name,
                    emergency_contact_mobile=p.emergency_mobile,
                    suspension_reason=p.suspension_reason,
                )
                for p, vehicle in zip(plans, vehicles, strict=True)
            ]
        )
        self.created["riders"] += len(riders)
        backdate(
            Rider,
            ("created_at", "updated_at"),
            [
                (r.pk, (p.joined_at, p.duty_changed_at or p.kyc_reviewed_at or p.joined_at))
                for p, r in zip(plans, riders, strict=True)
            ],
        )
        return {p.index: r for p, r in zip(plans, riders, strict=True)}

    def _demo_password_hash(self) -> str:
        if self._demo_hash is None:
            self._demo_hash = make_password(DEMO_PASSWORD)
        return self._demo_hash

    def _write_documents(self, plans: list[RiderPlan], riders: dict[int, Rider]) -> None:
        docs: list[KycDocument] = []
        times: list[datetime] = []
        for plan in plans:
            rider = riders[plan.index]
            for d in plan.docs:
                content, content_type, extension = demo_document(d.doc_type)
                doc = KycDocument(
                    rider=rider,
                    doc_type=d.doc_type,
                    number=d.number,
                    content_type=content_type,
                    size_bytes=len(content),
                    status=d.status,
                    reviewed_by=self.staff[d.reviewer] if d.reviewer else None,
                    reviewed_at=d.reviewed_at,
                    rejection_reason=d.rejection_reason,
                )
                doc.file.name = default_storage.save(
                    kyc_upload_to(doc, f"{d.doc_type.lower()}{extension}"), ContentFile(content)
                )
                docs.append(doc)
                times.append(d.uploaded_at)
        KycDocument.objects.bulk_create(docs)
        backdate(KycDocument, ("uploaded_at",), [(d.pk, (t,)) for d, t in zip(docs, times, strict=True)])
        self.created["kyc documents"] += len(docs)

    def _write_shifts(self, plans: list[RiderPlan], riders: dict[int, Rider]) -> None:
        logs = [
            DutyLog(rider=riders[p.index], started_at=s.started_at, ended_at=s.ended_at, end_reason=s.end_reason)
            for p in plans
            for s in p.shifts
        ]
        DutyLog.objects.bulk_create(logs)
        self.created["duty logs"] += len(logs)

    def _write_orders(self, plans: list[RiderPlan], riders: dict[int, Rider]) -> dict[str, Order]:
        partner_id = self.staff[PARTNER_USER[0]].pk
        pairs: list[tuple[OrderPlan, Rider | None]] = [
            (o, riders[p.index] if o.has_rider else None) for p in plans for o in p.orders
        ]
        return self._write_order_plans(pairs, partner_id)

    def _write_order_plans(self, pairs: list[tuple[OrderPlan, Rider | None]], partner_id: int) -> dict[str, Order]:
        orders = Order.objects.bulk_create(
            [
                Order(
                    external_ref=o.ref,
                    city=self.cities[o.geo.city_code],
                    status=o.status,
                    rider=rider,
                    created_by_id=partner_id,
                    pickup_lat=o.geo.pickup.lat,
                    pickup_lon=o.geo.pickup.lon,
                    pickup_address=o.geo.pickup_address,
                    drop_lat=o.geo.drop.lat,
                    drop_lon=o.geo.drop.lon,
                    drop_address=o.geo.drop_address,
                    delivery_fee_paise=o.geo.fee_paise,
                    cod_amount_paise=o.geo.cod_paise,
                    metadata=o.geo.metadata,
                    delivery_otp=o.geo.otp,
                    is_flagged=o.is_flagged,
                    cancel_reason=o.cancel_reason,
                    failure_reason=o.failure_reason,
                    distance_m=o.geo.distance_m,
                    assigned_at=o.assigned_at,
                    picked_up_at=o.picked_up_at,
                    delivered_at=o.delivered_at,
                )
                for o, rider in pairs
            ]
        )
        backdate(
            Order,
            ("created_at", "updated_at"),
            [(order.pk, (o.created_at, o.updated_at)) for (o, _), order in zip(pairs, orders, strict=True)],
        )
        events: list[OrderEvent] = []
        event_times: list[datetime] = []
        ratings: list[Rating] = []
        rating_times: list[datetime] = []
        for (o, rider), order in zip(pairs, orders, strict=True):
            rider_user_id = rider.user_id if rider else 0
            for e in o.events:
                events.append(
                    OrderEvent(
                        order=order,
                        from_status=e.from_status,
                        to_status=e.to_status,
                        rider=rider if e.with_rider else None,
                        actor_id=self._actor_id(e.actor, rider_user_id),
                        lat=e.position.lat if e.position else None,
                        lon=e.position.lon if e.position else None,
                        note=e.note,
                    )
                )
                event_times.append(e.at)
            if o.rating and rider:
                stars, comment, rated_at = o.rating
                ratings.append(Rating(rider=rider, order=order, stars=stars, comment=comment, rated_by_id=partner_id))
                rating_times.append(rated_at)
        OrderEvent.objects.bulk_create(events)
        backdate(OrderEvent, ("occurred_at",), [(e.pk, (t,)) for e, t in zip(events, event_times, strict=True)])
        Rating.objects.bulk_create(ratings)
        backdate(Rating, ("created_at",), [(r.pk, (t,)) for r, t in zip(ratings, rating_times, strict=True)])
        self.created["orders"] += len(orders)
        self.created["order events"] += len(events)
        self.created["ratings"] += len(ratings)
        return {order.external_ref: order for order in orders}

    def _write_incidents(self, plans: list[RiderPlan], riders: dict[int, Rider], orders: dict[str, Order]) -> None:
        tickets: list[SupportTicket] = []
        ticket_times: list[tuple[datetime, datetime]] = []
        alerts: list[EmergencyAlert] = []
        alert_times: list[datetime] = []
        for plan in plans:
            rider = riders[plan.index]
            for t in plan.tickets:
                tickets.append(
                    SupportTicket(
                        rider=rider,
                        order=orders.get(t.order_ref) if t.order_ref else None,
                        category=t.category,
                        priority=t.priority,
                        subject=t.subject,
                        body=t.body,
                        status=t.status,
                        assigned_to=self.staff[t.assigned] if t.assigned else None,
                        resolution=t.resolution,
                        resolved_at=t.resolved_at,
                    )
                )
                ticket_times.append((t.created_at, t.updated_at))
            for a in plan.alerts:
                alerts.append(
                    EmergencyAlert(
                        rider=rider,
                        city_id=rider.city_id,
                        lat=a.position.lat if a.position else None,
                        lon=a.position.lon if a.position else None,
                        message=a.message,
                        status=a.status,
                        acknowledged_by=self.staff[OPS_USERS[1][0]] if a.acknowledged_at else None,
                        acknowledged_at=a.acknowledged_at,
                        resolved_at=a.resolved_at,
                        resolution_note=a.resolution_note,
                    )
                )
                alert_times.append(a.raised_at)
        SupportTicket.objects.bulk_create(tickets)
        backdate(
            SupportTicket,
            ("created_at", "updated_at"),
            [(t.pk, times) for t, times in zip(tickets, ticket_times, strict=True)],
        )
        EmergencyAlert.objects.bulk_create(alerts)
        backdate(EmergencyAlert, ("raised_at",), [(a.pk, (t,)) for a, t in zip(alerts, alert_times, strict=True)])
        self.created["support tickets"] += len(tickets)
        self.created["emergency alerts"] += len(alerts)

    def _post(self, **posting: Any) -> int:
        """Posts through the wallet service (the only way into the ledger); returns the entry id."""
        result = ledger_entry_post(**posting)
        self.created["ledger entries"] += result.created
        return result.entry.pk

    def _write_ledger(self, plans: list[RiderPlan], riders: dict[int, Rider], orders: dict[str, Order]) -> None:
        ops_first, ops_second = (self.staff[u[0]] for u in OPS_USERS)
        for plan in plans:
            rider = riders[plan.index]
            wallet = 0
            delivered = sorted(
                (o for o in plan.orders if o.status == OrderStatus.DELIVERED and o.delivered_at),
                key=lambda o: o.delivered_at or self.now,
            )
            for o in delivered:
                order = orders[o.ref]
                self._post(
                    rider_id=rider.pk,
                    entry_type=EntryType.EARNING,
                    amount_paise=o.geo.fee_paise,
                    idempotency_key=f"earning:{order.pk}",
                    order_id=order.pk,
                    memo=f"Delivery fee {o.ref}",
                )
                wallet += o.geo.fee_paise
                if o.geo.cod_paise:
                    self._post(
                        rider_id=rider.pk,
                        entry_type=EntryType.COD_COLLECTED,
                        amount_paise=-o.geo.cod_paise,
                        account=Account.COD,
                        idempotency_key=f"cod:{order.pk}",
                        order_id=order.pk,
                        memo=f"COD collected {o.ref}",
                    )
            for n, (amount, memo) in enumerate(plan.incentives, start=1):
                self._post(
                    rider_id=rider.pk,
                    entry_type=EntryType.INCENTIVE,
                    amount_paise=amount,
                    idempotency_key=f"demo-incentive:{rider.pk}:{n}",
                    memo=memo,
                )
                wallet += amount
            if plan.cod_deposit_before:
                cutoff = plan.cod_deposit_before
                handed_in = sum(o.geo.cod_paise for o in delivered if o.delivered_at and o.delivered_at < cutoff)
                if handed_in > 0:
                    self._post(
                        rider_id=rider.pk,
                        entry_type=EntryType.COD_DEPOSIT,
                        amount_paise=handed_in,
                        account=Account.COD,
                        idempotency_key=f"demo-cod-deposit:{rider.pk}:1",
                        memo="Cash handed in at the hub",
                        created_by_id=ops_first.pk,
                    )
            for n, w in enumerate(plan.withdrawals, start=1):
                amount = (int(wallet * w.fraction) // 100) * 100
                if amount < 5_000:
                    continue
                request = WithdrawalRequest.objects.create(
                    rider=rider, amount_paise=amount, idempotency_key=f"demo-withdrawal:{plan.index}:{n}"
                )
                hold_id = self._post(
                    rider_id=rider.pk,
                    entry_type=EntryType.WITHDRAWAL,
                    amount_paise=-amount,
                    idempotency_key=f"withdrawal-hold:{request.pk}",
                    memo=f"Withdrawal request #{request.pk}",
                )
                wallet -= amount
                request.hold_entry_id = hold_id
                request.status = w.status
                if w.status in (WithdrawalStatus.APPROVED, WithdrawalStatus.PAID):
                    request.approved_by = ops_first
                    request.approved_at = w.requested_at + (w.decided_at - w.requested_at) / 2
                if w.status == WithdrawalStatus.PAID:
                    request.second_approved_by = ops_second
                    request.decided_at = w.decided_at
                    request.payout_reference = w.payout_reference
                elif w.status == WithdrawalStatus.REJECTED:
                    request.decided_at = w.decided_at
                    request.rejection_reason = w.rejection_reason
                    request.release_entry_id = self._post(
                        rider_id=rider.pk,
                        entry_type=EntryType.REVERSAL,
                        amount_paise=amount,
                        idempotency_key=f"withdrawal-release:{request.pk}",
                        reverses_id=hold_id,
                        memo=f"Withdrawal request #{request.pk} rejected",
                        created_by_id=ops_first.pk,
                    )
                    wallet += amount
                request.save()
                backdate(WithdrawalRequest, ("requested_at",), [(request.pk, (w.requested_at,))])
                self.created["withdrawals"] += 1

    def _write_trails(self, plans: list[RiderPlan], riders: dict[int, Rider]) -> None:
        for plan in plans:
            if plan.trail:
                self.created["gps points"] += location_points_record(
                    rider_id=riders[plan.index].pk, points=[p for _, p in plan.trail]
                )

    # Orders no rider has yet: the dispatch queue of each city

    def _seed_queue_orders(self) -> None:
        waiting = max(2, self.riders // 40)
        cancelled = max(1, self.riders // 100)
        refs = [queue_order_ref(c.code, "Q", n) for c in CITIES for n in range(1, waiting + 1)]
        refs += [queue_order_ref(c.code, "X", n) for c in CITIES for n in range(1, cancelled + 1)]
        existing = set(Order.objects.filter(external_ref__in=refs).values_list("external_ref", flat=True))
        pairs: list[tuple[OrderPlan, Rider | None]] = []
        for ref in refs:
            if ref in existing:
                continue
            pairs.append((self._queue_order(ref), None))
        if pairs:
            with transaction.atomic():
                self._write_order_plans(pairs, self.staff[PARTNER_USER[0]].pk)
        self.out(f"Dispatch queue: {len(pairs)} unassigned or cancelled orders created, {len(existing)} already there")

    def _queue_order(self, ref: str) -> OrderPlan:
        _, code, tail = ref.split("-")
        rng = random.Random(f"fleetops-demo:{self.seed}:{ref}")
        spec = next(c for c in CITIES if c.code == code)
        geo = RiderPlanner.geometry(spec, VehicleKind.BIKE, rng)
        if tail.startswith("Q"):
            created_at = self.now - timedelta(minutes=rng.uniform(0.5, 25))
            order = OrderPlan(ref=ref, status=OrderStatus.CREATED, geo=geo, created_at=created_at, has_rider=False)
            # Dispatch flags an order no rider took within a quarter of an hour.
            order.is_flagged = created_at < self.now - timedelta(minutes=15)
            order.events.append(EventPlan("", OrderStatus.CREATED, created_at, "partner", with_rider=False))
            return order
        created_at = self.now - timedelta(hours=rng.uniform(1, 72))
        order = OrderPlan(ref=ref, status=OrderStatus.CANCELLED, geo=geo, created_at=created_at, has_rider=False)
        order.cancel_reason = rng.choice(CANCEL_REASONS)
        order.events.append(EventPlan("", OrderStatus.CREATED, created_at, "partner", with_rider=False))
        order.events.append(
            EventPlan(
                OrderStatus.CREATED,
                OrderStatus.CANCELLED,
                created_at + timedelta(minutes=rng.uniform(2, 30)),
                "partner",
                None,
                order.cancel_reason,
                with_rider=False,
            )
        )
        return order


def demo_logins() -> list[Rider]:
    """The riders who can log in with ``DEMO_PASSWORD``, if they exist."""
    mobiles = [rider_mobile(i) for i in DEMO_LOGIN_INDICES]
    return list(Rider.objects.filter(mobile__in=mobiles).select_related("city").order_by("mobile"))
