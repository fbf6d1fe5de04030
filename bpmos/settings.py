"""BPM-OS settings: one module, every value from the environment.

Two run modes share this file (docs/design.md §2):

* embedded (the default): SQLite in WAL mode, in-memory channel layer, Celery on
  kombu's filesystem transport. Nothing to install but Python.
* production (``BPMOS_ENV=production``): PostgreSQL from ``DATABASE_URL``, Redis
  from ``REDIS_URL`` for the channel layer, cache and Celery broker, secure
  cookies/HSTS/SSL redirect, and a mandatory ``DJANGO_SECRET_KEY``.

The embedded mode has no key in the code either: it makes a random one on its
first run and keeps it in ``DATA_DIR/secret_key`` (``bpmos/localkeys.py``).

Setting ``DATABASE_URL`` / ``REDIS_URL`` without ``BPMOS_ENV=production`` uses
those servers with development safety settings (this is how the test suite
runs against PostgreSQL and Redis). ``.env.example`` documents every variable.
"""

import re
from datetime import timedelta
from pathlib import Path

import environ
import structlog

import bpmos.logconfig
from bpmos import auditkeys
from bpmos.localkeys import local_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is read when present; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

BPMOS_ENV = env.str("BPMOS_ENV", default="embedded")
if BPMOS_ENV not in {"embedded", "production"}:
    raise environ.ImproperlyConfigured(
        f"BPMOS_ENV must be 'embedded' or 'production', not {BPMOS_ENV!r}"
    )
PRODUCTION = BPMOS_ENV == "production"

# Production refuses to start without these (.env.example marks them REQUIRED)
# rather than falling back to a default that would serve insecurely or not at all.
_REQUIRED_IN_PRODUCTION = (
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
)
if PRODUCTION:
    _missing = [name for name in _REQUIRED_IN_PRODUCTION if not env.str(name, "")]
    if _missing:
        raise environ.ImproperlyConfigured(
            f"{', '.join(_missing)} must be set when BPMOS_ENV=production"
        )

DATA_DIR = Path(env.str("BPMOS_DATA_DIR", default=str(BASE_DIR / "var")))

# Parallel test workers (pytest-xdist sets PYTEST_XDIST_WORKER=gw0, gw1, ...) each
# get their own files and, below, their own Redis database, so one worker's cache
# flush or event never reaches another's tests.
TEST_WORKER = env.str("PYTEST_XDIST_WORKER", default="")
if TEST_WORKER:
    DATA_DIR = DATA_DIR / "xdist" / TEST_WORKER

if PRODUCTION:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")  # no default: refuse to start
    DEBUG = False
else:
    # No key in the code: the embedded mode makes its own random one on first run
    # and keeps it in DATA_DIR (bpmos/localkeys.py). An empty value (a copied
    # .env.example) counts as unset.
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or local_secret_key(DATA_DIR)
    DEBUG = env.bool("DJANGO_DEBUG", default=False)

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost"]
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "bpmos.adminconfig.PlantAdminConfig",  # django.contrib.admin, our own site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    # BPM-OS cross-cutting apps (inside the project package)
    "bpmos",  # project-wide management commands (seed_demo)
    "bpmos.accounts",
    "bpmos.events",
    "bpmos.idempotency",
    "bpmos.rowcounts",
    # BPM-OS domain apps (docs/design.md §3)
    "elog",
    "runbooks",
    "lines",
    "inventory",
    "exceptions",
    "passports",
    "scada",
    "compliance",
    # Tooling: manage.py generate_plant (the benches' and the tests' plants)
    "plant_generator",
]

MIDDLEWARE = [
    "bpmos.middleware.RequestContextMiddleware",
    # Right after the request id and outside every other middleware, so it also
    # sees the error pages those produce (e.g. DisallowedHost's HTML 400).
    "bpmos.middleware.ApiErrorMiddleware",
    "bpmos.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: it calls the view itself (inside the key's transaction) for POSTs
    # to /api/ that carry an Idempotency-Key (docs/api.md).
    "bpmos.idempotency.middleware.IdempotencyMiddleware",
]

# Request bodies (docs/security.md): JSON and form bodies up to
# BPMOS_MAX_BODY_BYTES (Django's DATA_UPLOAD_MAX_MEMORY_SIZE: 2.5 MB, room for
# 10,000 readings), multipart uploads (LIMS result files) up to
# BPMOS_MAX_UPLOAD_BYTES; past them 413 in the envelope.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("BPMOS_MAX_BODY_BYTES", default=2_621_440)
BPMOS_MAX_UPLOAD_BYTES = env.int("BPMOS_MAX_UPLOAD_BYTES", default=26_214_400)

ROOT_URLCONF = "bpmos.urls"
# The pages sign in with the session at /login/ (docs/pages.md); the API uses JWTs.
LOGIN_URL = "page-login"
LOGIN_REDIRECT_URL = "page-home"
LOGOUT_REDIRECT_URL = "page-login"
WSGI_APPLICATION = "bpmos.wsgi.application"
ASGI_APPLICATION = "bpmos.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
if PRODUCTION or "DATABASE_URL" in env:
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # A database that does not answer fails fast (health check, requests).
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
            "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
        )
        # PostgreSQL's JIT compilation off for our sessions (DATABASE_JIT=true
        # leaves the server's setting): BPM-OS runs short OLTP statements, and a
        # plan estimated past jit_above_cost pays the compile on every request.
        # On the plant-year a runbook's warranty query took 61-64 ms with JIT
        # (22-28 ms of it compiling) and 21 ms without (EXPLAIN ANALYZE).
        # The hot reads' statements prepared per connection (bpmos.compiled:
        # prepared_cursor). DATABASE_PREPARED=false behind a pooler in
        # transaction mode (PgBouncer), which cannot keep a session's
        # prepared statements (docs/deploy.md).
        BPMOS_DATABASE_PREPARED = env.bool("DATABASE_PREPARED", default=True)
        if BPMOS_DATABASE_PREPARED:
            # psycopg prepares only while its threshold is set (Django unsets
            # it); never by count: only the cursors that ask prepare.
            DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 2**31 - 1
        if not env.bool("DATABASE_JIT", default=False):
            options = DATABASES["default"]["OPTIONS"]
            options["options"] = f"{options.get('options', '')} -c jit=off".strip()
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str(
                "BPMOS_SQLITE_PATH", default=str(DATA_DIR / "bpmos.sqlite3")
            ),
            "OPTIONS": {
                # WAL lets daphne, the Celery worker and beat read while one writes;
                # IMMEDIATE takes the write lock at BEGIN so read-then-write
                # transactions serialise instead of failing with SQLITE_BUSY.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            "TEST": {"NAME": str(DATA_DIR / "test-bpmos.sqlite3")},
        }
    }
DB_IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"  # noqa: E501
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(DATA_DIR / "static")))
# WhiteNoise serves the admin's and Swagger UI's files from the app server. The
# embedded mode finds them in the installed apps directly (no collectstatic step);
# production serves what `manage.py collectstatic` gathered into STATIC_ROOT.
WHITENOISE_USE_FINDERS = not PRODUCTION
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# --- Redis: channel layer, cache, broker -----------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL and TEST_WORKER:
    _db = int(re.sub(r"\D", "", TEST_WORKER) or 0) + 1  # db 0 stays for people
    REDIS_URL = re.sub(r"/\d*$", "", REDIS_URL) + f"/{_db}"
if PRODUCTION and not REDIS_URL:
    raise environ.ImproperlyConfigured(
        "REDIS_URL is required when BPMOS_ENV=production"
    )

# Channel-group and cache key prefix: lets several installations (or parallel test
# workers) share one Redis without hearing each other.
REDIS_PREFIX = env.str("BPMOS_REDIS_PREFIX", default="bpmos")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # A dead or hung Redis must fail a send quickly (the outbox
                        # keeps the event) instead of holding the request. The read
                        # timeout must exceed channels_redis' 5 s blocking receive.
                        "socket_connect_timeout": 2,
                        "socket_timeout": 10,
                        "health_check_interval": 30,
                    }
                ],
                "prefix": f"{REDIS_PREFIX}:asgi",
                # Messages a channel holds before channels_redis drops new ones
                # (default 100). Each server process reads all its events from
                # one channel (bpmos.events.fanout); the resend task sends an
                # outage's backlog at once, faster than a process with many
                # clients hands them on, and a live event sent meanwhile was
                # dropped unnoticed. Held messages expire after 60 s anyway.
                "capacity": 10_000,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "bpmos.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {
        "default": {
            # File-based so the login throttle is shared by every embedded process.
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

# --- Celery -------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    # Every folder named, or kombu makes its "control" folder (the broadcast
    # exchanges) in the working directory: in the checkout, beside manage.py.
    # "filesystem://" is kombu's transport with messages written aside and
    # renamed whole (bpmos/fsbroker.py, registered by bpmos/celery.py).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "control_folder": str(_broker_dir / "control"),
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
else:
    # A message taken by a worker and not acknowledged (the worker died) goes
    # back to the queue after this many seconds. Above the hard time limit
    # below, so a task still running is never handed to a second worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("BPMOS_CELERY_VISIBILITY_TIMEOUT", default=900)
    }
# A task is acknowledged when it has finished, not when it is received, and a
# worker takes one message at a time: a worker killed in the middle of a task
# leaves it (and nothing else) to be run again by the next worker. Every task
# is written to be run again safely (docs/security.md, "Tasks").
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The longest task (a report job of a plant-year) stays well under this; a task
# past it is killed and, acknowledged late, not retried forever.
CELERY_TASK_TIME_LIMIT = env.int("BPMOS_CELERY_TASK_TIME_LIMIT", default=600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The whole beat schedule lives in bpmos/celery.py (BEAT_SCHEDULE).

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # simplejwt's, plus: a deactivation ends the tokens issued before it.
        "bpmos.accounts.authentication.BpmosJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["bpmos.permissions.RolePolicyPermission"],
    "DEFAULT_RENDERER_CLASSES": ["bpmos.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["bpmos.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "bpmos.filters.FilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "bpmos.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "bpmos.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "bpmos.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "login_failures": env.str("BPMOS_LOGIN_FAILURE_RATE", default="5/min"),
        # bpmos/throttles.py: the public passport per address, stream tickets per user
        "public_passport": env.str("BPMOS_PUBLIC_PASSPORT_RATE", default="120/min"),
        "stream_ticket": env.str("BPMOS_STREAM_TICKET_RATE", default="30/min"),
    },
    # The client address the throttles count by: REMOTE_ADDR unless the app runs
    # behind this many reverse proxies (then the X-Forwarded-For entry they
    # appended). 0 by default, so a client cannot pick its own address by
    # sending X-Forwarded-For (docs/security.md).
    "NUM_PROXIES": env.int("BPMOS_NUM_PROXIES", default=0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(
        minutes=env.int("BPMOS_ACCESS_TOKEN_MINUTES", default=15)
    ),
    "REFRESH_TOKEN_LIFETIME": timedelta(
        days=env.int("BPMOS_REFRESH_TOKEN_DAYS", default=7)
    ),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    # Empty (a copied .env.example) means unset, never an empty signing key.
    "SIGNING_KEY": env.str("BPMOS_JWT_SIGNING_KEY", default="") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "CHECK_USER_IS_ACTIVE": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "BPM-OS API",
    "DESCRIPTION": (
        "Operations backend of a battery-pack plant: production, lines, stock, "
        "battery passports. Every error uses the envelope described by the "
        "`Error` schema."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from the app server: plant networks may have no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SCHEMA_PATH_PREFIX": "/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several choice sets share a field name ("status"); name each one.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "bpmos.openapi.add_error_envelope",
        "bpmos.openapi.add_idempotency_key",
        "bpmos.openapi.add_query_rules",
    ],
    # Fields named alike ("status", "type", "role") carry different enums; each
    # gets one name. The control UI's display enums are lists of labels.
    "ENUM_NAME_OVERRIDES": {
        # the dispatch desk's lifecycle actions (schema of a text field)
        "LifecycleActionEnum": "passports.dispatch.api.serializers.LIFECYCLE_ACTIONS",
        # mobile contract (snake_case values)
        "WorkOrderStatusEnum": "runbooks.models.WorkOrderStatus.choices",
        "WorkOrderStageStatusEnum": "runbooks.models.StageStatus.choices",
        "IssueStatusEnum": "exceptions.models.ExceptionStatus.choices",
        "IssueTypeEnum": "exceptions.models.ExceptionType.choices",
        "IssueSeverityEnum": "exceptions.models.Severity.choices",
        "IssueUpdateStatusEnum": "exceptions.api.serializers.ISSUE_UPDATE_STATUSES",
        # control-UI contract (display labels)
        "RoleEnum": "bpmos.roles.Role",
        "RoleLabelEnum": "exceptions.api.serializers.ROLE_LABELS",
        "RunbookStatusEnum": "bpmos.dashboards.api_tower.serializers.RUNBOOK_STATUSES",
        "StageStatusEnum": "bpmos.dashboards.api_tower.serializers.STAGE_STATUSES",
        "GateStatusEnum": "runbooks.api.serializers.GATE_STATUSES",
        "GateTypeEnum": "runbooks.api.serializers.GATE_TYPES",
        "ItemStatusEnum": "inventory.api.serializers.ITEM_STATUSES",
        "ReservationStatusEnum": "inventory.api.serializers.RESERVATION_STATUSES",
        "LocationKindEnum": "inventory.api.serializers.LOCATION_KINDS",
        "PassportKindEnum": "passports.api.serializers.PASSPORT_KINDS",
        "PassportStateEnum": "passports.api.serializers.PASSPORT_STATES",
        "CustodianKindEnum": "passports.api.serializers.CUSTODIAN_KINDS",
        "PassportEventKindEnum": "passports.api.serializers.EVENT_KINDS",
        "PassportAttributeTierEnum": "passports.api.serializers.ATTRIBUTE_TIERS",
        "PassportAttributeSourceEnum": "passports.api.serializers.ATTRIBUTE_SOURCES",
        "BatteryCategoryEnum": "passports.api.serializers.BATTERY_CATEGORIES",
        # compliance's BWMR categories keep the name they had alone
        "CategoryEnum": "compliance.categories.CATEGORIES",
        "RecordableEventKindEnum": "passports.api.serializers.RECORDABLE_EVENT_KINDS",
        "StockUnitEnum": "inventory.api.serializers.UNITS",
        "ExceptionStatusEnum": "exceptions.api.serializers.EXCEPTION_STATUSES",
        "ExceptionTypeEnum": "exceptions.api.serializers.EXCEPTION_TYPES",
        "SeverityEnum": "exceptions.api.serializers.SEVERITIES",
        # lines (control UI: display labels; mobile: stored values)
        "LineModeEnum": "lines.api_tower.serializers.LINE_MODES",
        "LineHealthEnum": "lines.api_tower.serializers.LINE_HEALTHS",
        "StationStateEnum": "lines.api_tower.serializers.STATION_STATES",
        "MachineStatusEnum": "lines.models.MachineState.choices",
        "ReadingQualityEnum": "lines.models.ReadingQuality.choices",
        # passports: BMS provisioning (display labels)
        "ProvisioningStatusEnum": (
            "passports.api_provisioning.serializers.PROVISIONING_STATUSES"
        ),
        # dispatch desk (dispatch contract: "ON" live, "OFF" past)
        "DispatchJobStateEnum": "passports.dispatch.api.serializers.JOB_STATES",
        # scada: connectors and tags (connectors contract: stored values)
        "ConnectorKindEnum": "scada.models.ConnectorKind.choices",
        "ConnectorModeEnum": "scada.models.ConnectorMode.choices",
        "TagKindEnum": "scada.models.TagKind.choices",
        "ReadingAlarmStateEnum": "scada.models.AlarmFlag.choices",
        # (named here because a reading's alarm_state shares the field name)
        "AlarmStateEnum": "scada.models.AlarmState.choices",
    },
}

# --- Logging: one JSON object per line on stdout ---------------------------------
LOG_LEVEL = env.str("BPMOS_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "structlog.stdlib.ProcessorFormatter",
            "processor": structlog.processors.JSONRenderer(),
            "foreign_pre_chain": [
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
            ],
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",  # StreamHandler's default is stderr
            "formatter": "json",
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Django's default config gives "django" a plain-text console handler
        # (active when DEBUG) and "django.server" its own handler without
        # propagation; listing them here removes those handlers so every line
        # goes through the JSON handler above.
        "django": {"handlers": [], "propagate": True},
        # Our request log replaces Django's/daphne's per-request lines.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING", "propagate": True},
        "daphne.server": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        # One line per periodic task run every few seconds is noise, not news.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
    },
}
bpmos.logconfig.configure()

# --- Security (production) ----------------------------------------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # Load balancers probe health over plain HTTP inside the plant network.
    SECURE_REDIRECT_EXEMPT = [r"^api/health/?$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"

# --- BPM-OS -------------------------------------------------------------------------
BPMOS_DEMO_PASSWORD = env.str("BPMOS_DEMO_PASSWORD", default="bpmos-demo-2026")
# Seconds an outbox event may stay undelivered before the periodic task resends it.
BPMOS_EVENT_REDELIVERY_AFTER = env.float("BPMOS_EVENT_REDELIVERY_AFTER", default=5.0)
# Seconds between the checks of each server process that its channel-layer
# groups still exist (a Redis restarted empty forgets them); after a failure it
# re-joins as soon as the layer answers and catches up from the outbox.
BPMOS_EVENT_LAYER_CHECK_SECONDS = env.float(
    "BPMOS_EVENT_LAYER_CHECK_SECONDS", default=2.0
)
# Days delivered live events are kept (what a reconnecting client can resume from).
BPMOS_EVENT_RETENTION_DAYS = env.int("BPMOS_EVENT_RETENTION_DAYS", default=7)
# Machine readings (docs/lines.md, "Partitions" and "Durable commits"):
# PostgreSQL month partitions created this many months ahead by beat, and
# months kept (older whole months are dropped, or detached when
# BPMOS_READINGS_RETENTION_DETACH; 0 keeps every month).
BPMOS_READINGS_PARTITIONS_AHEAD = env.int("BPMOS_READINGS_PARTITIONS_AHEAD", default=3)
BPMOS_READINGS_RETENTION_MONTHS = env.int("BPMOS_READINGS_RETENTION_MONTHS", default=0)
BPMOS_READINGS_RETENTION_DETACH = env.bool(
    "BPMOS_READINGS_RETENTION_DETACH", default=False
)
# False: a readings batch commits without waiting for its WAL flush
# (PostgreSQL's synchronous_commit=off for that transaction only). Faster, but
# a PostgreSQL crash can lose the last ~0.6 s of acknowledged batches. Off by
# default: a 201 means the readings are on disk.
BPMOS_READINGS_SYNCHRONOUS_COMMIT = env.bool(
    "BPMOS_READINGS_SYNCHRONOUS_COMMIT", default=True
)
# Idempotency-Key (docs/api.md): hours a key and its answer are kept (replayed,
# and refused with another request), and seconds a running request holds its
# key; past that, it is presumed gone and a retry takes the key over.
BPMOS_IDEMPOTENCY_KEY_HOURS = env.int("BPMOS_IDEMPOTENCY_KEY_HOURS", default=24)
BPMOS_IDEMPOTENCY_LOCK_SECONDS = env.int("BPMOS_IDEMPOTENCY_LOCK_SECONDS", default=60)
# How long a WebSocket client has to authenticate after connecting.
BPMOS_WS_AUTH_TIMEOUT = env.float("BPMOS_WS_AUTH_TIMEOUT", default=10.0)
# The dispatch desk's SSE stream (docs/dispatch.md): seconds between heartbeat
# comments (keeps proxies from closing an idle stream), and how long a stream
# ticket (for plain EventSource clients) may wait to be redeemed.
BPMOS_SSE_HEARTBEAT_SECONDS = env.float("BPMOS_SSE_HEARTBEAT_SECONDS", default=15.0)
BPMOS_SSE_TICKET_SECONDS = env.int("BPMOS_SSE_TICKET_SECONDS", default=30)
# The audit keyring (bpmos/auditkeys.py): the current HMAC key of the audit chain,
# the passport ledgers and the anchors, and the retired keys that still verify
# what they signed. Keep them out of the database: whoever holds both can re-forge
# the chains. The current key defaults to the secret key (in the embedded mode,
# the one made in DATA_DIR); its id to its fingerprint. Rotation: move the current
# key to BPMOS_AUDIT_RETIRED_KEYS, set a new one, restart (docs/security.md).
BPMOS_AUDIT_KEY = env.str("BPMOS_AUDIT_KEY", default="") or SECRET_KEY
BPMOS_AUDIT_KEY_ID = env.str("BPMOS_AUDIT_KEY_ID", default="")
BPMOS_AUDIT_RETIRED_KEYS = env.list("BPMOS_AUDIT_RETIRED_KEYS", default=[])
# Refuse to start with a keyring that cannot be read (a malformed id, one id for
# two keys) rather than at the first write.
auditkeys.build(BPMOS_AUDIT_KEY, BPMOS_AUDIT_KEY_ID, BPMOS_AUDIT_RETIRED_KEYS)
# Electronic signatures (elog/signatures.py; docs/security.md): how many wrong
# passwords a signer may re-enter in BPMOS_SIGNATURE_FAILURE_WINDOW_SECONDS before
# signing is refused (429) until the window has passed.
BPMOS_SIGNATURE_FAILURE_LIMIT = env.int("BPMOS_SIGNATURE_FAILURE_LIMIT", default=5)
BPMOS_SIGNATURE_FAILURE_WINDOW_SECONDS = env.int(
    "BPMOS_SIGNATURE_FAILURE_WINDOW_SECONDS", default=900
)
# A site that wants a signed dispatch release upstream of the dispatch desk:
# then no battery is dispatched (by the desk or a ledger event) unless a
# "dispatch_release" signature is bound to its ledger after its last hold or
# failed test (docs/passports.md). The dispatch contract's bodies do not change.
BPMOS_DISPATCH_REQUIRES_SIGNED_RELEASE = env.bool(
    "BPMOS_DISPATCH_REQUIRES_SIGNED_RELEASE", default=False
)
# The audit chain's head, anchored outside the database (elog/anchors.py): a
# signed line appended to this file every BPMOS_AUDIT_ANCHOR_SECONDS (900; read
# by bpmos/celery.py). Put it on storage the database's administrators cannot
# rewrite (docs/security.md).
BPMOS_AUDIT_ANCHOR_FILE = env.str("BPMOS_AUDIT_ANCHOR_FILE", default="") or str(
    DATA_DIR / "anchors" / "audit-anchors.jsonl"
)
# BMS provisioning over CAN (passports.bms; docs/passports.md). Any python-can
# interface: socketcan on a line PC, pcan/kvaser/vector adapters, virtual for the
# embedded demo and the tests (virtual buses connect within one process only).
BPMOS_CAN_INTERFACE = env.str("BPMOS_CAN_INTERFACE", default="virtual")
BPMOS_CAN_CHANNEL = env.str("BPMOS_CAN_CHANNEL", default="bpmos-bms")
# 0: leave the bitrate to the interface (virtual ignores it; socketcan sets it
# with `ip link`).
BPMOS_CAN_BITRATE = env.int("BPMOS_CAN_BITRATE", default=500000)
# Seconds to wait for each answer (and each ISO-TP flow control) from a BMS.
BPMOS_BMS_TIMEOUT_S = env.float("BPMOS_BMS_TIMEOUT_S", default=1.0)
# Scheme and host of the batteries' GS1 Digital Link URIs (what their QR codes
# carry: passports/gs1.py), e.g. https://id.bpm-energy.example; empty: the
# address the request came to.
BPMOS_DIGITAL_LINK_DOMAIN = env.str("BPMOS_DIGITAL_LINK_DOMAIN", default="")
# Node id a provisioning request addresses when it names none (the end-of-line
# station's connector).
BPMOS_BMS_DEFAULT_NODE = env.int("BPMOS_BMS_DEFAULT_NODE", default=1)
# Start a simulated BMS inside the process on first use (virtual interface only):
# the embedded demo provisions its packs without hardware. Off in production.
BPMOS_BMS_SIMULATOR = env.bool("BPMOS_BMS_SIMULATOR", default=not PRODUCTION)
# Maintenance work orders to the CMMS (scada.maintenance; docs/scada.md): the
# connector to send to (by name; empty: the one enabled CMMS connector), the
# attempts before a work order shows as failed (it is still tried every cap), and
# the backoff between attempts (base doubling up to the cap, in seconds).
BPMOS_CMMS_CONNECTOR = env.str("BPMOS_CMMS_CONNECTOR", default="")
BPMOS_CMMS_MAX_ATTEMPTS = env.int("BPMOS_CMMS_MAX_ATTEMPTS", default=8)
BPMOS_CMMS_BACKOFF_BASE_S = env.float("BPMOS_CMMS_BACKOFF_BASE_S", default=30.0)
BPMOS_CMMS_BACKOFF_CAP_S = env.float("BPMOS_CMMS_BACKOFF_CAP_S", default=3600.0)
# SCADA's collector process and the demo plant's OPC UA simulator (docs/scada.md,
# "The collector process"). The simulator serves here; the demo connector reads it.
BPMOS_OPCUA_SIM_URL = env.str(
    "BPMOS_OPCUA_SIM_URL", default="opc.tcp://127.0.0.1:4841/bpmos/"
)
# Seconds between the collector's checks that each server still answers; a check
# (and a connect) gives up after the timeout, and the communication-loss alarm
# follows the first failed check.
BPMOS_COLLECTOR_HEARTBEAT_S = env.float("BPMOS_COLLECTOR_HEARTBEAT_S", default=2.0)
BPMOS_COLLECTOR_TIMEOUT_S = env.float("BPMOS_COLLECTOR_TIMEOUT_S", default=3.0)
# The longest wait between reconnection attempts (the backoff doubles from 1 s).
BPMOS_COLLECTOR_BACKOFF_MAX_S = env.float("BPMOS_COLLECTOR_BACKOFF_MAX_S", default=10.0)
# Seconds between the collector's looks for connectors and tags added, changed or
# disabled, and between its flushes of subscribed value changes to the database.
BPMOS_COLLECTOR_WATCH_S = env.float("BPMOS_COLLECTOR_WATCH_S", default=1.0)
BPMOS_COLLECTOR_FLUSH_S = env.float("BPMOS_COLLECTOR_FLUSH_S", default=0.5)
# The service account the collector stores readings as (the SCADA gateway's; the
# demo seed makes it). Absent: readings are stored as the system's.
BPMOS_COLLECTOR_USERNAME = env.str("BPMOS_COLLECTOR_USERNAME", default="scada-gateway")

# --- compliance and reports (docs/compliance.md) ----------------------------------
# Financial years (April-March) and report days begin at midnight in the plant's
# time zone, so a pack dispatched late on 31 March counts in the year it ends.
BPMOS_PLANT_TIMEZONE = env.str("BPMOS_PLANT_TIMEZONE", default="Asia/Kolkata")
# Mail (scheduled compliance returns). EMAIL_URL as django-environ reads it, e.g.
# smtp+tls://user:password@smtp.example.com:587; unset, mail is written to files
# under DATA_DIR/mail so the embedded plant needs no mail server.
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(DATA_DIR / "mail")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="bpmos@localhost")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# Reports: a download of more rows than this runs as a Celery job (202 and a job
# to poll) instead of in the request; finished job files live in DATA_DIR/reports
# and are deleted after BPMOS_REPORT_JOB_KEEP_HOURS.
BPMOS_REPORT_SYNC_ROWS = env.int("BPMOS_REPORT_SYNC_ROWS", default=20000)
BPMOS_REPORT_DIR = Path(env.str("BPMOS_REPORT_DIR", default=str(DATA_DIR / "reports")))
BPMOS_REPORT_JOB_KEEP_HOURS = env.int("BPMOS_REPORT_JOB_KEEP_HOURS", default=24)

# --- the electronic shift log (docs/logs.md) -----------------------------------
# This installation's plant id: POST /api/logs/write must name it as plant_id.
BPMOS_PLANT_ID = env.str("BPMOS_PLANT_ID", default="main")
