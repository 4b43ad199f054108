"""TaskContext hydration: real YAML files, the real environment, registered hydrators, secrets in every channel."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from task_engine_core import (
    Pipeline,
    PipelineExecutor,
    RateLimit,
    Secret,
    Task,
    TaskContext,
    TaskState,
    mask_secrets,
    register_hydrator,
    skippable,
)
from task_engine_core._hydrators import Hydrated, hydrate, registered_hydrators, reset_hydrators, unregister_hydrator
from task_engine_core._policies import default_rate_limiter
from task_engine_core.errors import ContextFileError, ContextKeyError, HydrationError
from task_engine_core.reporters import ConsoleReporter

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_state(monkeypatch, tmp_path):
    # Every test starts in an empty directory with no TASK_ENGINE__ variables and the built-in chain.
    for name in list(os.environ):
        if name.startswith("TASK_ENGINE__"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    reset_hydrators()
    yield
    reset_hydrators()
    default_rate_limiter().clear()


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def capture_context(**executor_kwargs):
    """Run a one-task pipeline and return the context object its task saw."""
    pipeline = Pipeline("ctx")
    seen = []

    @pipeline.register
    class Reader(Task):
        def perform_task(self):
            seen.append(self.context)

    PipelineExecutor(pipeline, reporters=[], **executor_kwargs).run()
    return seen[0]


# -- the default YAML file and the environment ------------------------------------------------------
def test_task_engine_yml_in_the_working_directory_is_read_by_default(tmp_path):
    write(
        tmp_path / "task_engine.yml",
        """
        tenant_info:
          url: https://tenant.example
          retries: 3
        hosts: [a, b]
    """,
    )
    context = capture_context()
    assert context["tenant_info"]["url"] == "https://tenant.example"
    assert context["tenant_info"]["retries"] == 3
    assert context["hosts"] == ("a", "b")
    assert context.sources == (f"yaml file {tmp_path / 'task_engine.yml'}", "environment TASK_ENGINE__*")


def test_a_task_context_or_mapping_given_to_the_executor_is_used_as_is(tmp_path, monkeypatch):
    write(tmp_path / "task_engine.yml", "source: file\n")
    monkeypatch.setenv("TASK_ENGINE__SOURCE", "env")
    given = TaskContext({"source": "given"}, sources=("test",))
    assert capture_context(context=given) is given
    mapped = capture_context(context={"source": "mapping"})
    assert mapped.to_dict() == {"source": "mapping"} and mapped.sources == ("executor argument",)


def test_an_explicit_path_wins_over_the_working_directory(tmp_path):
    write(tmp_path / "task_engine.yml", "source: cwd\n")
    other = write(tmp_path / "prod.yml", "source: explicit\n")
    assert capture_context(context=str(other))["source"] == "explicit"
    assert capture_context(context=other)["source"] == "explicit"


def test_environment_variables_become_nested_keys_and_override_the_file(tmp_path, monkeypatch):
    write(
        tmp_path / "task_engine.yml",
        """
        tenant_info:
          url: https://file.example
          region: eu
    """,
    )
    monkeypatch.setenv("TASK_ENGINE__TENANT_INFO__URL", "https://env.example")
    monkeypatch.setenv("TASK_ENGINE__FEATURE", "on")
    monkeypatch.setenv("TASK_ENGINE_EXAMPLE_SEED", "7")  # one underscore: not a context variable
    context = capture_context()
    assert context.to_dict() == {
        "tenant_info": {"url": "https://env.example", "region": "eu"},
        "feature": "on",
    }


def test_an_environment_value_and_section_on_the_same_key_conflict(monkeypatch):
    monkeypatch.setenv("TASK_ENGINE__DB", "x")
    monkeypatch.setenv("TASK_ENGINE__DB__HOST", "y")
    with pytest.raises(HydrationError) as caught:
        hydrate()
    assert str(caught.value) == (
        "environment variables 'TASK_ENGINE__DB' and 'TASK_ENGINE__DB__HOST' both set context key 'db', "
        "one as a value and one as a section; unset one of them"
    )


def test_no_file_gives_an_empty_context_and_a_missing_key_names_path_and_sources(tmp_path):
    context = hydrate()
    assert len(context) == 0
    with pytest.raises(ContextKeyError) as caught:
        context["tenant_info"]
    assert str(caught.value) == (
        f"context key 'tenant_info' is not set (sources consulted: yaml file {tmp_path / 'task_engine.yml'} "
        f"(not found), environment TASK_ENGINE__*); add it to the context file or to one of these sources"
    )


def test_a_missing_nested_key_names_the_dotted_path(tmp_path):
    write(tmp_path / "task_engine.yml", "tenant_info: {url: x}\n")
    context = hydrate()
    with pytest.raises(ContextKeyError) as caught:
        context["tenant_info"]["token"]
    assert caught.value.path == "tenant_info.token"
    with pytest.raises(ContextKeyError) as caught:
        context.get_path("tenant_info.auth.token")
    assert caught.value.path == "tenant_info.auth.token"
    assert context.get_path("tenant_info.url") == "x"
    assert context["tenant_info"].get("token", "default") == "default"


# -- registered hydrators -----------------------------------------------------------------------------
def test_a_registered_hydrator_runs_in_order_sees_earlier_data_and_is_overridden_by_later(tmp_path, monkeypatch):
    write(
        tmp_path / "task_engine.yml",
        """
        vault: {url: https://vault.example}
        db: {host: file-host, user: app}
    """,
    )
    asked = []

    @register_hydrator(order=50, name="vault")
    def from_vault(request):
        asked.append(request.data["vault"]["url"])
        return {"db": {"host": "vault-host", "password": Secret("vault-pw-123")}}

    monkeypatch.setenv("TASK_ENGINE__DB__HOST", "env-host")
    context = hydrate()
    assert asked == ["https://vault.example"]
    assert context["db"]["host"] == "env-host"
    assert context["db"]["user"] == "app"
    assert context["db"]["password"].reveal() == "vault-pw-123"
    assert context.sources[1] == "vault"
    assert [name for name, _ in registered_hydrators()] == ["yaml file", "vault", "environment"]


def test_a_hydrator_can_replace_the_default_file_hydrator(tmp_path):
    write(tmp_path / "task_engine.yml", "source: file\n")
    register_hydrator(
        lambda request: Hydrated({"source": "service"}, "config service"), name="service", replace_default=True
    )
    context = hydrate()
    assert context["source"] == "service"
    assert context.sources == ("config service", "environment TASK_ENGINE__*")
    assert registered_hydrators() == [("service", 0), ("environment", 1000)]


def test_registering_a_name_again_replaces_it_and_unregister_removes_it():
    register_hydrator(lambda request: {"v": 1}, name="extra")
    register_hydrator(lambda request: {"v": 2}, name="extra")
    assert hydrate()["v"] == 2
    unregister_hydrator("extra")
    assert "v" not in hydrate()


def test_a_later_hydrator_deep_merges_and_a_secret_stays_secret_when_overridden(tmp_path):
    write(
        tmp_path / "task_engine.yml",
        """
        api:
          token: !secret file-token-1
          hosts: [a, b]
          timeout: 5
    """,
    )
    register_hydrator(lambda request: {"api": {"token": "plain-token-2", "hosts": ["c"]}}, name="override")
    context = hydrate()
    assert context["api"]["timeout"] == 5
    assert context["api"]["hosts"] == ("c",)  # lists are replaced, not concatenated
    assert isinstance(context["api"]["token"], Secret)
    assert context["api"]["token"].reveal() == "plain-token-2"


def test_a_hydrator_that_raises_or_returns_a_non_mapping_stops_the_run_before_any_task():
    ran = []
    pipeline = Pipeline("guarded")
    pipeline.register(lambda: ran.append(1), name="task")

    secret = Secret("s3cr3t-value")

    def failing(request):
        raise RuntimeError(f"login with {secret.reveal()} refused")

    register_hydrator(failing, name="vault")
    executor = PipelineExecutor(pipeline, reporters=[])
    with pytest.raises(HydrationError) as caught:
        executor.run()
    assert (
        str(caught.value) == "context hydrator 'vault' raised RuntimeError: login with *** refused; no task was started"
    )
    assert ran == [] and executor.result is None

    register_hydrator(lambda request: ["not", "a", "mapping"], name="vault")
    with pytest.raises(HydrationError) as caught:
        hydrate()
    assert str(caught.value) == (
        "context hydrator 'vault' returned list; a hydrator returns a mapping (or None when it has nothing)"
    )


# -- read-only, shared ----------------------------------------------------------------------------------
def test_the_context_is_read_only_at_every_level(tmp_path):
    write(tmp_path / "task_engine.yml", "tenant_info: {url: x}\nhosts: [a]\n")
    context = hydrate()
    with pytest.raises(TypeError, match="TaskContext is read-only: cannot set 'tenant_info.url'"):
        context["tenant_info"]["url"] = "y"
    with pytest.raises(TypeError, match="read-only: cannot delete 'hosts'"):
        del context["hosts"]
    with pytest.raises(AttributeError):
        context["hosts"].append("b")
    plain = context.to_dict()
    plain["tenant_info"]["url"] = "changed"
    assert context["tenant_info"]["url"] == "x"


def test_every_task_in_every_thread_sees_the_same_object(tmp_path):
    write(tmp_path / "task_engine.yml", "tenant_info: {url: x}\n")
    pipeline = Pipeline("threads")
    seen: list[tuple[int, int, str]] = []
    barrier = threading.Barrier(4, timeout=10)

    for i in range(4):

        def task(context, i=i):
            barrier.wait()  # all four run at once, on four threads
            seen.append((id(context), id(context["tenant_info"]), threading.current_thread().name))

        pipeline.register(task, name=f"t{i}")
    PipelineExecutor(pipeline, workers=4, reporters=[]).run()
    assert len({s[0] for s in seen}) == 1 and len({s[1] for s in seen}) == 1
    assert len({s[2] for s in seen}) == 4


# -- secrets ---------------------------------------------------------------------------------------------
SECRET_FILE = """
    tenant_info:
      url: https://tenant.example
      token: !secret tok-abc-123
    db:
      password: !env CTX_TEST_DB_PASSWORD
"""


def test_secret_and_env_tags_are_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("CTX_TEST_DB_PASSWORD", "pw-from-env-456")
    write(tmp_path / "task_engine.yml", SECRET_FILE)
    context = hydrate()
    assert context["tenant_info"]["token"].reveal() == "tok-abc-123"
    assert context["db"]["password"].reveal() == "pw-from-env-456"
    assert context.redacted() == {
        "tenant_info": {"url": "https://tenant.example", "token": "***"},
        "db": {"password": "***"},
    }
    assert mask_secrets(context) == context.redacted()


def test_sensitive_environment_names_are_marked_secret(monkeypatch):
    monkeypatch.setenv("TASK_ENGINE__API__TOKEN", "env-token-789")
    monkeypatch.setenv("TASK_ENGINE__API__URL", "https://api.example")
    context = hydrate()
    assert isinstance(context["api"]["token"], Secret)
    assert context["api"]["url"] == "https://api.example"


def test_secrets_never_show_in_repr_str_print_or_format(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CTX_TEST_DB_PASSWORD", "pw-from-env-456")
    write(tmp_path / "task_engine.yml", SECRET_FILE)
    context = hydrate()
    token = context["tenant_info"]["token"]
    shown = [
        repr(context),
        str(context),
        repr(context["tenant_info"]),
        repr(token),
        str(token),
        f"{token}",
        f"{token:>5}",
    ]
    print(context, token, context["db"])
    shown.append(capsys.readouterr().out)
    for text in shown:
        assert "tok-abc-123" not in text and "pw-from-env-456" not in text
    assert repr(token) == "Secret('***')"
    assert "'token': '***'" in repr(context)


def test_secrets_are_masked_in_logging_even_after_reveal(tmp_path, caplog):
    write(tmp_path / "task_engine.yml", SECRET_FILE.replace("!env CTX_TEST_DB_PASSWORD", "plain"))
    pipeline = Pipeline("logs")
    logger = logging.getLogger("tests.context")

    @pipeline.register
    class Caller(Task):
        def perform_task(self):
            token = self.context["tenant_info"]["token"]
            logger.warning("calling with %s and %r", token.reveal(), self.context)
            try:
                raise PermissionError(f"token {token.reveal()} expired")
            except PermissionError:
                logger.exception("request failed")

    with caplog.at_level(logging.INFO):
        PipelineExecutor(pipeline, reporters=[]).run()
    text = caplog.text
    assert "calling with *** and TaskContext(" in text
    assert "PermissionError: token *** expired" in text
    assert "tok-abc-123" not in text


def test_the_console_reporter_masks_a_secret_inside_an_error(tmp_path):
    write(tmp_path / "task_engine.yml", SECRET_FILE.replace("!env CTX_TEST_DB_PASSWORD", "plain"))
    pipeline = Pipeline("console")

    @pipeline.register
    class Leaky(Task):
        @skippable
        def perform_task(self):
            raise RuntimeError(f"401 for token {self.context['tenant_info']['token'].reveal()}")

    out = io.StringIO()
    result = PipelineExecutor(pipeline, reporters=[ConsoleReporter(stream=out)]).run()
    assert result.tasks["Leaky"].state is TaskState.SKIPPED
    assert out.getvalue().splitlines() == ["Executing Leaky", "Skipping task due to error: 401 for token ***"]


def test_short_secrets_are_masked_as_values_but_not_searched_for_in_text():
    short = Secret("ab")
    assert repr(short) == "Secret('***')" and mask_secrets({"k": short}) == {"k": "***"}
    assert mask_secrets("abc ab") == "abc ab"


# -- file errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, message",
    [
        (
            "a: 1\nb: [1, 2\nc: 3\n",
            " is not valid YAML, line 3, column 2: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence that starts on line 2); fix the file",
        ),
        (
            "x: 1\nrun: !!python/object/apply:os.system ['echo owned']\n",
            ", line 2: the tag '!!python/object/apply:os.system' is not allowed: the context loader builds plain "
            "data only (yaml.safe_load), never Python objects; remove the tag",
        ),
        (
            "x: !vault db/password\n",
            ", line 1: the tag '!vault' is not allowed: the context loader knows only !secret and !env; remove the tag",
        ),
        ("x: !secret {a: 1}\n", ", line 1: !secret applies to a single value, not to a mapping"),
        (
            "db:\n  password: !env CTX_TEST_UNSET_VARIABLE\n",
            ", line 2: environment variable 'CTX_TEST_UNSET_VARIABLE' (from !env) is not set; set it or change the value",
        ),
        ("- a\n- b\n", " must hold a mapping (key: value lines) at the top level, not a list"),
    ],
)
def test_file_errors_name_the_file_and_line(tmp_path, text, message):
    path = write(tmp_path / "task_engine.yml", text)
    with pytest.raises(ContextFileError) as caught:
        hydrate()
    assert str(caught.value) == f"context file '{path}'{message}"


def test_python_tags_are_refused_without_running_anything(tmp_path):
    marker = tmp_path / "owned"
    write(tmp_path / "task_engine.yml", f"run: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ContextFileError):
        hydrate()
    assert not marker.exists()


def test_a_missing_or_unreadable_explicit_path_is_named(tmp_path):
    with pytest.raises(ContextFileError) as caught:
        hydrate(tmp_path / "nope.yml")
    assert str(caught.value) == (
        f"context file '{tmp_path / 'nope.yml'}' does not exist; check the path given with --context or "
        f"PipelineExecutor(context=...)"
    )
    (tmp_path / "folder.yml").mkdir()
    with pytest.raises(ContextFileError) as caught:
        hydrate(tmp_path / "folder.yml")
    assert str(caught.value) == (
        f"cannot read context file '{tmp_path / 'folder.yml'}': Is a directory; check the path and its permissions"
    )
    (tmp_path / "binary.yml").write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ContextFileError) as caught:
        hydrate(tmp_path / "binary.yml")
    assert str(caught.value) == (
        f"cannot read context file '{tmp_path / 'binary.yml'}': it is not UTF-8 text (invalid start byte at byte 3)"
    )


def test_aliases_and_merge_keys_work_within_the_expansion_limit(tmp_path):
    write(
        tmp_path / "task_engine.yml",
        """
        base: &base {region: eu, retries: 3}
        prod:
          <<: *base
          region: us
        hosts: &hosts [a, b]
        copies: [*hosts, *hosts]
    """,
    )
    assert hydrate().to_dict() == {
        "base": {"region": "eu", "retries": 3},
        "prod": {"region": "us", "retries": 3},
        "hosts": ["a", "b"],
        "copies": [["a", "b"], ["a", "b"]],
    }


def test_a_recursive_mapping_alias_is_refused(tmp_path):
    path = write(tmp_path / "task_engine.yml", "a: &a {x: 1, y: *a}\n")
    with pytest.raises(ContextFileError) as caught:
        hydrate()
    assert str(caught.value) == (
        f"context file '{path}', line 1: a value contains an alias of itself (a recursive alias), which the context "
        f"cannot hold; replace the alias with the values it should have"
    )


def test_an_empty_file_is_an_empty_context(tmp_path):
    write(tmp_path / "task_engine.yml", "# nothing yet\n")
    assert hydrate().to_dict() == {}


def test_rate_limits_in_the_context_file_configure_the_limiter(tmp_path):
    write(
        tmp_path / "task_engine.yml",
        """
        rate_limits:
          /jobs/runs/get: [{rate: 30}, {rate: 1000, per: hour}]
    """,
    )
    capture_context()
    assert default_rate_limiter().limits("/jobs/runs/get") == (
        RateLimit("/jobs/runs/get", 30),
        RateLimit("/jobs/runs/get", 1000, per="hour"),
    )


# -- the command line, in a real subprocess ---------------------------------------------------------------
PIPELINE_FILE = """
import logging
import my_vault  # registers a hydrator when imported, as an application would
from task_engine_core import Task, register

@register
class Report(Task):
    def perform_task(self):
        ctx = self.context
        print("url", ctx["tenant_info"]["url"], "region", ctx["tenant_info"]["region"])
        print("context", ctx)
        logging.getLogger("app").warning("token %s", ctx["tenant_info"]["token"].reveal())
        raise RuntimeError("rejected key " + ctx["vault_key"].reveal())
"""

VAULT_MODULE = """
from task_engine_core import Secret, register_hydrator

@register_hydrator(order=500, name="vault")
def vault(request):
    return {"vault_key": Secret("vault-key-0042")}
"""


def run_cli(tmp_path, *args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASK_ENGINE__")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(tmp_path)])
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "task_engine_core", "run", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_context_option_env_override_custom_hydrator_and_masked_failure(tmp_path):
    write(tmp_path / "pipeline.py", PIPELINE_FILE)
    write(tmp_path / "my_vault.py", VAULT_MODULE)
    config = write(
        tmp_path / "prod.yml",
        """
        tenant_info:
          url: https://file.example
          region: eu
          token: !secret file-token-0099
    """,
    )
    done = run_cli(
        tmp_path,
        "pipeline.py",
        "--context",
        str(config),
        env_extra={"TASK_ENGINE__TENANT_INFO__URL": "https://env.example"},
    )
    assert done.returncode == 1, done.stderr
    assert "url https://env.example region eu" in done.stdout
    assert "'token': '***'" in done.stdout and "'vault_key': '***'" in done.stdout
    assert "task 'Report' failed after 1 attempt(s): RuntimeError: rejected key ***" in done.stderr
    assert "token ***" in done.stderr  # the log line
    for secret in ("file-token-0099", "vault-key-0042"):
        assert secret not in done.stdout and secret not in done.stderr


def test_cli_hydration_error_exits_2_without_traceback_and_starts_no_task(tmp_path):
    write(tmp_path / "pipeline.py", "from task_engine_core import register\n@register\ndef t():\n    print('ran')\n")
    bad = write(tmp_path / "bad.yml", "a: [1\n")
    done = run_cli(tmp_path, "pipeline.py", "--context", str(bad))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: context file '{bad}' is not valid YAML, line 2, column 1:")
    assert "Traceback" not in done.stderr


def test_a_context_with_secrets_survives_pickle_and_deepcopy(tmp_path):
    # Backends may pickle the context to hand it to a worker.
    import copy
    import pickle

    write(tmp_path / "task_engine.yml", "api: {url: x, token: !secret pickled-token-1}\n")
    context = hydrate()
    for clone in (pickle.loads(pickle.dumps(context)), copy.deepcopy(context)):
        assert clone == context and clone.sources == context.sources
        assert clone["api"]["token"].reveal() == "pickled-token-1"
        assert isinstance(clone["api"], TaskContext)


def test_a_context_nested_up_to_the_limit_works_in_every_output(tmp_path):
    from task_engine_core import Pipeline, PipelineExecutor
    from task_engine_core._context_file import MAX_CONTEXT_DEPTH
    from task_engine_core.reporters import HtmlRunReport, JsonRunSummary

    depth = MAX_CONTEXT_DEPTH
    (tmp_path / "deep.yml").write_text(
        "".join("  " * i + f"k{i}:\n" for i in range(depth - 1)) + "  " * (depth - 1) + "v: 1\n"
    )
    p = Pipeline("deep")
    seen = []

    @p.register
    def reads(context):
        node = context
        for i in range(depth - 1):
            node = node[f"k{i}"]
        seen.append(node["v"])

    reporters = [HtmlRunReport(tmp_path / "r.html"), JsonRunSummary(tmp_path / "r.json")]
    PipelineExecutor(p, context=tmp_path / "deep.yml", reporters=reporters, stats=False).run()
    assert seen == [1] and (tmp_path / "r.html").stat().st_size and (tmp_path / "r.json").stat().st_size


def test_constructing_a_secret_installs_no_logging_hook_and_a_run_does() -> None:
    # Before: Secret(...) replaced the process-wide log record factory as a side effect.
    code = (
        "import logging\n"
        "from task_engine_core import Pipeline, PipelineExecutor\n"
        "from task_engine_core._secrets import Secret\n"
        "python_default = logging.getLogRecordFactory()\n"
        "Secret('s3cr3t-value-123')\n"
        "print(logging.getLogRecordFactory() is python_default)\n"
        "pipeline = Pipeline('p')\n"
        "pipeline.register(lambda: logging.getLogger('t').warning('token s3cr3t-value-123'), name='t')\n"
        "PipelineExecutor(pipeline, reporters=[], stats=False, context={}).run()\n"
        "print(logging.getLogRecordFactory() is python_default)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
    assert "token ***" in done.stderr and "s3cr3t-value-123" not in done.stderr
