"""Issue 12 item 16: `pulse demo` prints its own timing (wall and CPU seconds of the whole command), the
figure the README quotes, and still prints the owner token alone on its last line."""

import re

from tests.tenancy.test_cli_and_tokens import pulse


def test_demo_prints_its_wall_and_cpu_time(tmp_path):
    r = pulse("demo", "--leads", "120", "--seed", "3", db=f"sqlite://{tmp_path}/demo.db")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1].startswith("cp_")
    timing = re.fullmatch(r"pulse demo: (\d+\.\d) s wall, (\d+\.\d) s CPU \(120 leads, SQLite\)", lines[-2])
    assert timing, lines[-2]
    wall, cpu = map(float, timing.groups())
    assert wall > 0 and cpu > 0
