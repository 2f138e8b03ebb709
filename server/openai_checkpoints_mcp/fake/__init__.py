"""A faithful fake of OpenAI's fine-tuning API for tests and demo mode.

`FakeOpenAI` is the ASGI app, `FaultInjector` wraps it to script failures,
`running_server` serves either over real HTTP, and `demo_data` is the bundled dataset.
"""

from .app import FakeData, FakeFile, FakeOpenAI, RecordedRequest
from .demo import DEMO_JOB_IDS, demo_data
from .faults import Fault, FaultInjector
from .serving import running_server

__all__ = [
    "DEMO_JOB_IDS",
    "FakeData",
    "FakeFile",
    "FakeOpenAI",
    "Fault",
    "FaultInjector",
    "RecordedRequest",
    "demo_data",
    "running_server",
]
