"""Sandboxed evaluation of model-written Python expressions (the "code" task family).

Why: "code" tasks ask a model for a Python expression in ``x`` and score it on hidden
integer inputs.  That text is untrusted and may be hostile (by accident, or because ES
found that hostile text scores well), so it is executed ONLY here, never in-process.

Design: each :class:`Sandbox` owns one long-lived worker (this file run as
``python -I -S``: stdlib only, empty environment) that speaks length-prefixed JSON over
pipes.  The worker never runs untrusted code: per job (one answer with all its inputs)
it forks one child, so one answer can never affect another answer's score.  Only inputs
reach the worker; expected outputs stay in the host, which does the scoring.  Jobs run
one at a time (2 children at once could signal each other: both are uid nobody).

Threat model / what each layer defends against:
* worker start: unshare new network, PID and IPC namespaces (plus a user namespace
  when not root) and become PID 1 of the PID namespace: no network, even via raw
  syscalls (ctypes); no SysV IPC; children see and can signal only each other, never
  the host's processes; PID 1 cannot be killed from inside.
* child: ``setsid`` (own process group, SIGKILLed as a whole on timeout); fds 0-2 are
  /dev/null, fd 3 the result pipe, all others closed; chroot into a fresh, empty,
  read-only directory (no files to read or write, no /proc, nothing left to import);
  environment cleared; PR_SET_NO_NEW_PRIVS; as root, drop to uid/gid 65534 (nobody)
  after setting limits (root ignores RLIMIT_NPROC), otherwise drop all capabilities.
* limits: RLIMIT_CPU + ITIMER_PROF: CPU burn / infinite loops; RLIMIT_AS: memory bombs;
  RLIMIT_NPROC=0: fork bombs, threads, os.system; RLIMIT_NOFILE=4 (all in use): no new
  files, sockets or pipes unless an fd is closed first; RLIMIT_FSIZE: big files;
  RLIMIT_CORE=0: core dumps; wall clock (worker-side): sleeping / blocked answers;
  output cap + validation in the worker: huge, malformed or truncated outputs.
* The restricted ``__builtins__`` is a convenience only, trivially bypassed (e.g.
  ``().__class__.__base__.__subclasses__()``); the OS layers above are the defence.

Not defended: kernel bugs (no seccomp filter: every syscall is reachable, and ctypes is
loaded in the worker); CPU/memory use up to the limits; a child can read its copy of
the worker's memory (other answers and inputs of the same batch, nothing secret); an
answer may forge its own outputs (no better than computing them: expected values stay
in the host, and in program mode every one-line assert is judged on the host from the
values it asks of the answer: clbench.host_checks).  Where namespaces are
not permitted (e.g. non-root without unprivileged user namespaces) isolation is WEAK:
the child runs as the calling user and can use the network, read/write that user's
files and signal its processes.  ``Sandbox.isolation`` reports what is active and a
warning is issued.  In the non-root user-namespace mode the child owns its job dir and
can fill it (bounded by CPU time and RLIMIT_FSIZE per file) until the job ends.
"""
from __future__ import annotations

import ast, atexit, builtins, ctypes, json, math, os, resource, select, shutil, signal
import struct, subprocess, sys, tempfile, threading, time, warnings
from collections import OrderedDict
from dataclasses import astuple, dataclass

MAX_EXPR_CHARS = 300
MAX_PROGRAM_CHARS = 20000  # program mode (MBPP): a function definition plus its asserts
# Pure modules a program may import (pre-imported by the worker: nothing can be imported
# after the chroot). A convenience list only; the OS layers are the defence.
PROGRAM_MODULES = ("math", "re", "heapq", "collections", "itertools", "functools", "bisect",
                   "string", "operator", "cmath", "statistics", "copy", "fractions", "decimal",
                   "typing", "array", "random", "sys")
_CHUNK = 256  # jobs per worker message
_NOBODY = 65534
_NEWNET, _NEWPID, _NEWIPC, _NEWUSER = 0x40000000, 0x20000000, 0x08000000, 0x10000000
_SAFE_BUILTINS = {n: getattr(builtins, n) for n in (
    "abs", "min", "max", "pow", "range", "len", "int", "float", "sum", "divmod", "round",
    "bool", "str", "all", "any", "sorted", "list", "tuple", "reversed", "enumerate", "zip",
    "map", "filter")}
_now = time.monotonic


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: float = 1.0
    wall_seconds: float = 2.0
    memory_bytes: int = 256 * 2**20
    file_bytes: int = 2**20
    max_output_bytes: int = 65536


@dataclass(frozen=True)
class ExecResult:
    outputs: tuple  # per input: int/float result, or None (raised / timed out / not a number);
    # program mode: per check 1/0, or for a value check the repr of its value (or None)
    status: str     # "ok", "timeout", "crashed", "rejected"


def _send(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            left = deadline - _now()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _recv(fd: int, deadline: float | None = None, max_len: int = 2**31):
    head = _read_exact(fd, 4, deadline)
    if head is None or struct.unpack(">I", head)[0] > max_len:
        return None
    body = _read_exact(fd, struct.unpack(">I", head)[0], deadline)
    return None if body is None else json.loads(body)


def _valid_outputs(obj, n: int) -> bool:
    return (type(obj) is list and len(obj) == n
            and all(v is None or type(v) in (int, float, str) for v in obj))  # str: a value check


# ------------------------------------------------------------------------ worker side
def _isolate(libc) -> dict:
    """Unshare namespaces; with a new PID namespace, fork so the server is its PID 1."""
    info = {"root": os.geteuid() == 0, "userns": False, "netns": False, "pidns": False}
    user = 0 if info["root"] else _NEWUSER
    if libc.unshare(_NEWNET | _NEWPID | _NEWIPC | user) != 0:  # e.g. seccomp forbids it
        ok = libc.unshare(_NEWNET | user) == 0
        info.update(netns=ok, userns=ok and bool(user))
        return info
    info.update(netns=True, pidns=True, userns=bool(user))
    pid = os.fork()
    if pid:  # outer process: wait for the server (which owns the pipes), then exit
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.waitpid(pid, 0)
        os._exit(0)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: if the outer dies, so does the namespace
    return info


def _program_builtins() -> dict:
    """Builtins for program mode: no files, input or exit; imports only PROGRAM_MODULES."""
    def _import(name, globals=None, locals=None, fromlist=(), level=0):
        top = name.split(".")[0]
        if level or top not in PROGRAM_MODULES or name not in sys.modules:
            raise ImportError(name)
        return sys.modules[name if fromlist else top]

    out = {k: v for k, v in vars(builtins).items()
           if k not in ("open", "input", "breakpoint", "exit", "quit", "help", "__loader__", "__spec__")}
    out["__import__"] = _import
    return out


def _plain(v, depth: int = 0):
    """v as builtin data that repr() writes and ast.literal_eval() reads back (a namedtuple
    as a tuple, a Counter as a dict); anything else raises. Not a defence: the host
    compares whatever comes back with an expected value the child never saw."""
    if depth > 100:
        raise ValueError("too deep")
    if v is None:
        return None
    if isinstance(v, (bool, int, float, complex, str, bytes)):
        return _base_type(v)(v)
    if isinstance(v, (list, tuple)):
        items = [_plain(x, depth + 1) for x in v]
        return items if isinstance(v, list) else tuple(items)
    if isinstance(v, (set, frozenset)):
        return {_plain(x, depth + 1) for x in v}
    if isinstance(v, dict):
        return {_plain(k, depth + 1): _plain(x, depth + 1) for k, x in v.items()}
    raise TypeError(type(v).__name__)


def _base_type(v) -> type:
    return next(t for t in (bool, int, float, complex, str, bytes) if isinstance(v, t))


def _run_program(expr, checks) -> list:
    """Program mode: exec the answer once, then each check in its namespace: 1 passed, 0 not;
    a value check ("=" + expression) gives the repr of the expression's value instead."""
    ns = {"__builtins__": _program_builtins(), "__name__": "answer"}
    try:
        exec(compile(expr, "<answer>", "exec"), ns)
    except BaseException:
        return [None if c.startswith("=") else 0 for c in checks]
    outs = []
    for c in checks:
        try:
            if c.startswith("="):
                text = repr(_plain(eval(compile(c[1:], "<check>", "eval"), ns)))
                outs.append(text if len(text) <= 16384 else None)
            else:
                exec(compile(c, "<check>", "exec"), ns)
                outs.append(1)
        except BaseException:
            outs.append(None if c.startswith("=") else 0)
    return outs


def _child(libc, jobdir, wfd, null, expr, inputs, lim, info, checks=None) -> None:
    """Runs in the forked child; never returns.  A setup failure exits before any eval.
    `checks` (program mode): statements run after the answer, e.g. MBPP's asserts."""
    try:
        os.setsid()
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.dup2(wfd, 3)
        os.closerange(4, 1 << 20)
        if info["root"] or info["userns"]:
            os.chroot(jobdir)
            jobdir = "/"
        os.chdir(jobdir)
        os.environ.clear()
        cpu = max(1, math.ceil(lim.cpu_seconds))
        R = resource  # imported by the worker: nothing can be imported after the chroot
        for res, soft, hard in ((R.RLIMIT_CPU, cpu, cpu + 1), (R.RLIMIT_NPROC, 0, 0),
                                (R.RLIMIT_AS, lim.memory_bytes, lim.memory_bytes),
                                (R.RLIMIT_FSIZE, lim.file_bytes, lim.file_bytes),
                                (R.RLIMIT_NOFILE, 4, 4), (R.RLIMIT_CORE, 0, 0)):
            R.setrlimit(res, (soft, hard))
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            os._exit(3)
        if info["root"]:
            os.setgroups([])
            os.setresgid(_NOBODY, _NOBODY, _NOBODY)
            os.setresuid(_NOBODY, _NOBODY, _NOBODY)
        elif info["userns"]:  # drop every capability held inside the user namespace
            hdr, caps = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
            if libc.capset(hdr, caps) != 0:
                os._exit(3)
        signal.setitimer(signal.ITIMER_PROF, lim.cpu_seconds)  # sub-second CPU limit
        if checks is not None:
            outs = _run_program(expr, checks)
            inputs = ()
        else:
            code = compile(expr, "<answer>", "eval")
            outs = []
        for x in inputs:
            try:
                v = eval(code, {"__builtins__": dict(_SAFE_BUILTINS), "x": x})
                t = type(v)  # bools count as ints; ints beyond ~4200 digits are dropped
                outs.append(int(v) if t is bool else v if t is float
                            or (t is int and v.bit_length() < 14000) else None)
            except BaseException:
                outs.append(None)
        data = json.dumps(outs).encode()
        if len(data) <= lim.max_output_bytes:
            os.write(3, data)
    except BaseException:
        pass
    os._exit(0)


def _run_job(libc, jobdir, null, expr, inputs, lim, info, checks=None) -> list:
    os.mkdir(jobdir, 0o555)  # fresh and empty; root-owned, so nobody cannot write in it
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(libc, jobdir, w, null, expr, inputs, lim, info, checks)
    n = len(inputs) if checks is None else len(checks)
    os.close(w)
    deadline, buf, why = _now() + lim.wall_seconds, bytearray(), None
    while why is None:
        left = deadline - _now()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            why = "timeout"
        elif not (chunk := os.read(r, 65536)):
            why = "eof"
        elif len(buf := buf + chunk) > lim.max_output_bytes:
            why = "crashed"
    for kill in (os.killpg, os.kill):  # finished or overdue: kill the whole group
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:  # reap strays re-parented to us (PID 1)
            pass
    except ChildProcessError:
        pass
    os.close(r)
    shutil.rmtree(jobdir, ignore_errors=True)
    if why == "eof":
        try:
            outs = json.loads(bytes(buf))
            if _valid_outputs(outs, n):
                return ["ok", outs]
        except Exception:  # malformed / truncated / too deeply nested
            pass
        cpu_kill = os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGPROF)
        why = "timeout" if cpu_kill else "crashed"
    return [why, [None] * n]


def _worker_main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    tmp = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()  # ext4: slow
    for name in os.listdir(tmp):  # sweep dirs of workers that were SIGKILLed
        if name.startswith("clbench-sandbox-") and name.count("-") == 3:
            try:
                os.kill(int(name.split("-")[2]), 0)
            except ProcessLookupError:
                shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
            except (OSError, ValueError):
                pass
    base = tempfile.mkdtemp(prefix=f"clbench-sandbox-{os.getpid()}-", dir=tmp)
    info = _isolate(libc)
    null, seq = os.open(os.devnull, os.O_RDWR), 0
    _send(1, info)
    try:
        while (msg := _recv(0)) is not None:
            lim, results = SandboxLimits(*msg["limits"]), []
            for expr, inputs, *checks in msg["jobs"]:
                seq += 1
                jobdir = os.path.join(base, str(seq))
                if checks:
                    for m in PROGRAM_MODULES:  # before the child's chroot
                        __import__(m)
                results.append(_run_job(libc, jobdir, null, expr, inputs, lim, info,
                                        checks[0] if checks else None))
            _send(1, results)
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------ host side
def _precheck(expr, checks=None) -> bool:
    """Cheap syntax check; executes nothing."""
    limit, mode = (MAX_EXPR_CHARS, "eval") if checks is None else (MAX_PROGRAM_CHARS, "exec")
    if not isinstance(expr, str) or len(expr) > limit or "\x00" in expr:
        return False
    try:
        with warnings.catch_warnings():  # `2x` etc. warn (invalid decimal literal) to the user's terminal
            warnings.simplefilter("ignore")
            ast.parse(expr, mode=mode)
            for c in checks or ():
                ast.parse(c[1:], mode="eval") if c.startswith("=") else ast.parse(c, mode="exec")
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False


def _score(result: ExecResult, tests) -> float:
    if result.status != "ok" or not tests:
        return 0.0
    hits = sum((type(o) is int or (type(o) is float and math.isfinite(o))) and o == y
               for o, (_, y) in zip(result.outputs, tests))
    return hits / len(tests)


class Sandbox:
    """Owns one worker process (restarted transparently if it dies); memoises results
    in a bounded LRU keyed by (expr, inputs, limits).  Thread-safe."""

    def __init__(self, limits: SandboxLimits = SandboxLimits(), cache_size: int = 100_000):
        self.limits, self.cache_size = limits, cache_size
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.RLock()
        self._proc, self._pid, self.isolation = None, None, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", os.path.abspath(__file__)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={}, cwd="/", close_fds=True)
        self._pid = os.getpid()
        info = _recv(self._proc.stdout.fileno(), _now() + 30, 1 << 16)
        if not isinstance(info, dict):
            self.close()
            raise RuntimeError("clbench sandbox worker failed to start")
        self.isolation = info
        if not (info["root"] or info["userns"]) or not info["netns"]:
            warnings.warn(f"clbench sandbox: WEAK isolation on this host: {info}")

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None or self._pid != os.getpid():
                return  # never touch a worker inherited from a parent process
            proc.stdin.close()  # EOF: the worker removes its temp dir and exits
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:  # the server gets PDEATHSIG, its children die
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def _call(self, jobs: list, lim: SandboxLimits):
        """One round trip; returns the validated results, or None if the worker failed."""
        if self._proc is None or self._pid != os.getpid() or self._proc.poll() is not None:
            self.close()
            self._start()
        try:
            _send(self._proc.stdin.fileno(), {"limits": list(astuple(lim)), "jobs": jobs})
            deadline = _now() + 10 + len(jobs) * (lim.wall_seconds + 0.5)
            res = _recv(self._proc.stdout.fileno(), deadline,
                        len(jobs) * (lim.max_output_bytes + 64) + 1024)
        except (OSError, ValueError):
            res = None
        if isinstance(res, list) and len(res) == len(jobs) and all(
                isinstance(r, list) and len(r) == 2 and r[0] in ("ok", "timeout", "crashed")
                and _valid_outputs(r[1], len(j[2]) if len(j) > 2 else len(j[1]))
                for r, j in zip(res, jobs)):
            return res
        self.close()
        return None

    def evaluate_many(self, jobs, limits: SandboxLimits | None = None) -> list[ExecResult]:
        """Jobs are (expression, int inputs) or, in program mode, (program, [], checks)."""
        lim = limits or self.limits
        keys = []
        for expr, inputs, *checks in jobs:
            if not all(type(v) is int for v in inputs):
                raise TypeError("sandbox inputs must be ints")
            if checks and not all(isinstance(c, str) for c in checks[0]):
                raise TypeError("sandbox checks must be strings")
            keys.append((expr, tuple(inputs), lim, tuple(checks[0]) if checks else None))
        with self._lock:
            found, todo = {}, []
            for k in dict.fromkeys(keys):  # unique keys, order kept
                if k in self._cache:
                    self._cache.move_to_end(k)
                    found[k] = self._cache[k]
                elif not _precheck(k[0], k[3]):
                    found[k] = ExecResult((None,) * _n_out(k), "rejected")
                else:
                    todo.append(k)
            for i in range(0, len(todo), _CHUNK):
                chunk = todo[i:i + _CHUNK]
                res = self._call([_job(k) for k in chunk], lim)
                if res is None:  # the worker died: redo one by one to isolate the culprit
                    res = [(self._call([_job(k)], lim)
                            or [["crashed", [None] * _n_out(k)]])[0] for k in chunk]
                for k, (status, outs) in zip(chunk, res):
                    found[k] = ExecResult(tuple(outs), status)
            self._cache.update(found)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return [found[k] for k in keys]

    def score_many(self, items, limits: SandboxLimits | None = None) -> list[float]:
        results = self.evaluate_many([(e, [x for x, _ in tests]) for e, tests in items], limits)
        return [_score(r, tests) for r, (_, tests) in zip(results, items)]

    def score_programs(self, items, limits: SandboxLimits | None = None) -> list[float]:
        """(program, checks) pairs -> share of checks passed. Every one-line assert is judged
        on the host (clbench.host_checks): the child only computes the values the assert
        asks of the answer, so a program that writes "all passed" to the result pipe
        itself, patches builtins, exits early or returns an object equal to everything
        passes no assert. Any other check line runs in the child as a statement."""
        from clbench.host_checks import host_check, verdict

        specs = [[host_check(c) for c in checks] for _, checks in items]
        jobs = []
        for (program, checks), hs in zip(items, specs):
            lines = []
            for c, h in zip(checks, hs):
                lines += [c] if h is None else ["=" + r for r in h.requests]
            jobs.append((program, [], lines))
        results = self.evaluate_many(jobs, limits)
        scores = []
        for (_, checks), hs, r in zip(items, specs, results):
            if r.status != "ok" or not checks:
                scores.append(0.0)
                continue
            outs, passed = list(r.outputs), 0
            for h in hs:
                if h is None:
                    out = outs.pop(0)
                    passed += type(out) is int and out == 1
                else:
                    values, outs = outs[:len(h.requests)], outs[len(h.requests):]
                    passed += verdict(h, values)
            scores.append(passed / len(checks))
        return scores


def _job(key) -> list:
    return [key[0], list(key[1])] + ([list(key[3])] if key[3] is not None else [])


def _n_out(key) -> int:
    return len(key[1]) if key[3] is None else len(key[3])


_SHARED: dict[int, Sandbox] = {}
_SHARED_LOCK = threading.Lock()


def _shared() -> Sandbox:
    with _SHARED_LOCK:
        if os.getpid() not in _SHARED:
            _SHARED.clear()  # an entry from a parent process is not ours to close
            _SHARED[os.getpid()] = Sandbox()
        return _SHARED[os.getpid()]


@atexit.register
def _close_shared() -> None:
    if os.getpid() in _SHARED:
        _SHARED[os.getpid()].close()


def evaluate_many(jobs, limits: SandboxLimits = SandboxLimits()) -> list[ExecResult]:
    return _shared().evaluate_many(jobs, limits)


def evaluate_expression(expr: str, inputs, limits: SandboxLimits = SandboxLimits()) -> ExecResult:
    return evaluate_many([(expr, list(inputs))], limits)[0]


def score_many(items, limits: SandboxLimits = SandboxLimits()) -> list[float]:
    return _shared().score_many(items, limits)


def score_expression(expr: str, tests, limits: SandboxLimits = SandboxLimits()) -> float:
    return score_many([(expr, list(tests))], limits)[0]


PROGRAM_LIMITS = SandboxLimits(cpu_seconds=2.0, wall_seconds=4.0)


def score_programs(items, limits: SandboxLimits = PROGRAM_LIMITS) -> list[float]:
    """Program mode (MBPP): exec each answer, then its checks (asserts) in a fresh child."""
    return _shared().score_programs(items, limits)


if __name__ == "__main__":
    _worker_main()
