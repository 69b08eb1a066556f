"""Issuance's Python cost without HTTP, gunicorn or wrk: the Flask test client posts `--requests`
issuances for different login IDs of one organisation (after 50 to warm up), and prints the
process CPU and wall time per issuance; with `--profile`, cProfile's cumulative times of the
project's functions (where a regression on the issuance path shows first).

    python -m bench.issuance_in_process [--requests 400] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

from bench.common import BenchEnv
from bench.issuance import load_registry, make_csrs

WARM_UP = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--profile", action="store_true", help="print cProfile's cumulative times of ca_service's functions")
    args = parser.parse_args()
    env = BenchEnv("in_process")
    try:
        env.init_ca()
        token = env.token("frontend")
        load_registry(env, args.requests + WARM_UP)
        from ca_service.api.app import create_app  # after BenchEnv has set the environment
        from ca_service.cli.common import context

        client = create_app(context()).test_client()
        csrs = make_csrs(args.requests + WARM_UP)
        headers = {"Authorization": f"Bearer {token}"}

        def issue(i: int) -> None:
            r = client.post(f"/v1/users/u{i}/certificates", json={"csr": csrs[i]}, headers=headers)
            assert r.status_code == 201, r.text

        for i in range(WARM_UP):
            issue(i)
        profile = cProfile.Profile() if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        for i in range(WARM_UP, WARM_UP + args.requests):
            issue(i)
        if profile is not None:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        n = args.requests
        label = " (profiled)" if profile else ""
        print(f"{n} issuances in process{label}: {1000 * cpu / n:.2f} ms CPU, {1000 * wall / n:.2f} ms wall each")
        if profile is not None:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(r"ca_service", 40)
            print(out.getvalue())
    finally:
        env.stop()


if __name__ == "__main__":
    main()
