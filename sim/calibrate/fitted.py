"""The fitted configs as YAML: ``retention``, ``economics`` and ``journey`` groups with
their provenance and estimates in comments, each checked against the simulator's schema
before anything is written, and the command that runs the simulator on them. A transaction
fit also writes an ``uncertainty`` group: the estimates' uncertainty (the BG/NBD parameters
jointly lognormal with the fit's covariance of their logs, the order value by the delta
method) with the baseline's other shared assumptions, for a probabilistic sensitivity
analysis; the fitted groups are composed together and the uncertainty read before writing.

Times in the written configs are days, as in the simulator. Every text written into YAML
(file and stage names) reads back as the same string, through YAML and OmegaConf (``${``
is escaped, never resolved); comments stay one line whatever the names hold.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import re
import shlex
import tempfile
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.calibrate import buying, funnel
from sim.calibrate.journey import JourneyFit
from sim.calibrate.mle import CalibrationError
from sim.calibrate.transactions import TransactionFit
from sim.errors import InputError
from sim.model.config import compose_config, to_container
from sim.model.distributions import CV_RANGE
from sim.model.spec import SpecError, build_spec
from sim.model.uncertainty import JOINT, read_uncertainty

__all__ = ["business_yaml", "check_composed", "economics_yaml", "journey_yaml", "psa_command",
           "referral_entry", "retention_yaml", "run_command", "uncertainty_tree",
           "uncertainty_yaml"]


def _g(x: float, digits: int = 4) -> str:
    """A number for tables: ``digits`` significant digits, '-' for NaN."""
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:,.0f}"


def _yaml_number(x: float) -> str:
    """Six significant digits; exponents with a mantissa dot, as YAML 1.1 floats need."""
    text = f"{float(x):.6g}"
    return f"{float(x):.5e}" if "e" in text else text


# YAML 1.1 reads these plain words as booleans or null, not as strings
_YAML_WORDS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"])


def _omegaconf_literal(text: str) -> str:
    """``text`` escaped for OmegaConf, which resolves ``${...}`` in every string value (even
    a quoted one): ``${`` becomes ``\\${`` and a run of k backslashes before it 2k, so the
    value reads back as ``text`` and never resolves."""
    return re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", text)


def _quoted(text: str, dollar: str = "$") -> str:
    """A YAML double-quoted scalar reading back as ``text`` (JSON's escapes are YAML's;
    characters YAML does not allow raw, such as U+0085 or U+2028, escaped too)."""
    body = json.dumps(text, ensure_ascii=False).replace("${", dollar + "{")
    out = []
    for c in body:
        if c.isprintable() or c == " ":
            out.append(c)
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
    return "".join(out)


def _plain(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text)) and text.lower() not in _YAML_WORDS


def _yaml_key(name: str) -> str:
    """A mapping key: plain when YAML reads it back as the same string, else quoted.
    Keys are never interpolated, so the ``$`` of ``${`` is written as ``\\x24`` (no ``${``
    in the file)."""
    name = str(name)
    return name if _plain(name) else _quoted(name, dollar="\\x24")


def _yaml_str(text: str) -> str:
    """A string value reading back as ``text`` through YAML and OmegaConf."""
    text = str(text)
    return text if _plain(text) else _quoted(_omegaconf_literal(text))


def _comment(text: str) -> str:
    """Text for a YAML comment: one line (line breaks and other unprintable characters
    escaped), no ``${``."""
    text = "".join(c if c.isprintable() else json.dumps(c)[1:-1] if ord(c) < 0x10000
                   else f"\\U{ord(c):08x}" for c in str(text))
    return _omegaconf_literal(text)


def _provenance(source_name: str, sha: str, command: str, lines: Sequence[str]) -> str:
    """Header comments; every line is one comment line whatever the file or stage names
    hold (``_comment``)."""
    out = [f"# Fitted by `{command}` on {dt.date.today().isoformat()}",
           f"# source: {_comment(source_name)}, sha256 {sha}",
           *(f"# {part}" for line in lines
             for part in textwrap.wrap(_comment(line), 94, break_on_hyphens=False,
                                       subsequent_indent="  "))]
    return "\n".join(out) + "\n"


def run_command(groups: Sequence[str], config_dir: Path | str = "DIR") -> str:
    """The command that runs the simulator on fitted configs written into ``config_dir``."""
    return " ".join(["python -m sim --config-dir",
                     *(shlex.quote(str(a)) for a in (config_dir, *groups))])


# the options a PSA compares are the user's own; these two scenarios ship with the package
PSA_OPTIONS = "psa.draws=256 'compare=[remove_hidden_fees,seo]'"


def psa_command(groups: Sequence[str], config_dir: Path | str = "DIR") -> str:
    """``run_command`` as a probabilistic sensitivity analysis: the draws of the uncertainty
    group (``groups`` selects the fitted one) propagated into a comparison of options."""
    return f"{run_command(groups, config_dir)} {PSA_OPTIONS}"


@functools.cache
def _baseline() -> dict[str, Any]:
    return to_container(compose_config([]))


def _check_config(section: str, value: dict[str, Any], referral_entry: str | None = None
                  ) -> None:
    """The fitted section composed into the baseline must pass ``build_spec`` (the
    journey as the written YAML holds it: escaped text resolves to the names)."""
    cfg = copy.deepcopy(_baseline())
    cfg[section] = value if section == "journey" else cfg[section] | value
    if referral_entry is not None:  # as the override passes it: ${ escaped
        cfg["advocacy"]["referral_entry_stage"] = _omegaconf_literal(referral_entry)
    try:
        build_spec(cfg)
    except SpecError as err:
        raise CalibrationError(f"the fitted {section} config does not validate: "
                               + "; ".join(f"{p} = {v!r}: {a}" for p, v, a in err.problems)
                               ) from None


# ------------------------------------------------------------------ transactions
def retention_yaml(result: TransactionFit, name: str, source_name: str, sha: str) -> str:
    """``retention/fitted_<name>.yaml``: BG/NBD in the simulator's parametrisation (days)
    with the provenance in comments (the schema has no place for it)."""
    d, bg = result.data, result.bgnbd
    alpha_days, alpha_days_se = result.alpha_days
    period = f"{d.first_date.date()} to {d.calibration_end.date()}"
    lines = [
        "Repeat buying, BG/NBD (Fader, Hardie & Lee 2005): lambda ~ Gamma(r, alpha_days) per "
        "day, drop-out p ~ Beta(a, b) after each repeat purchase.",
        f"calibration period: {period}" + (f", holdout to {d.holdout_end.date()}"
                                           if d.holdout_end is not None else ""),
        f"customers: {len(d.customers)}, repeat buyers: {int((d.customers['x'] > 0).sum())}, "
        f"fitted in {d.unit}s, log-likelihood {bg.loglik:.6g}",
        "estimates (standard errors): " + ", ".join(
            f"{n} {_g(bg[n])} ({_g(bg.se_of(n), 3)})" for n in ("r", "a", "b"))
        + f", alpha_days {_g(alpha_days)} ({_g(alpha_days_se, 3)})"
        + (" = 7 x alpha_weeks" if d.unit == "week" else ""),
        "use: " + run_command(_transaction_groups(result, name))
        + "   (DIR: the folder holding business/, retention/, economics/ and uncertainty/): "
        "the fitted business, with the segments' and the experience's effects on buying "
        "made neutral; retention=fitted_<name> alone leaves them acting on top of the fit",
    ]
    head = _provenance(source_name, sha, "python -m sim.calibrate transactions", lines)
    body = (f"model: repeat_purchase\nrepeat:\n  r: {_yaml_number(bg['r'])}\n"
            f"  alpha_days: {_yaml_number(alpha_days)}\n  a: {_yaml_number(bg['a'])}\n"
            f"  b: {_yaml_number(bg['b'])}\n")
    return head + body


def economics_values(result: TransactionFit) -> tuple[dict[str, Any], str]:
    """The fitted ``economics`` keys (the Gamma-Gamma model as fitted; the matched
    lognormal's cv brought into the simulator's range) and a note when it had to be."""
    ov = result.order_value()
    cv = ov["order_value_cv"]
    lo, hi = 0.01, 10.0  # spec: order_value_cv in (0, 10]
    note = ""
    if not lo <= cv <= hi:
        note = f" (fitted cv {_g(cv)} is outside [{lo:g}, {hi:g}]; the nearest value is used)"
        cv = min(max(cv, lo), hi) if np.isfinite(cv) else hi
    gg = result.spend
    return {"order_value_mean": ov["order_value_mean"], "order_value_cv": cv,
            "order_value_model": "gamma_gamma",
            "gamma_gamma": {n: float(_yaml_number(gg[n])) for n in buying.GG_NAMES}}, note


def economics_yaml(result: TransactionFit, name: str, source_name: str, sha: str) -> str:
    """``economics/fitted_<name>.yaml``: the baseline economics with the order value's mean
    and cv from the Gamma-Gamma fit."""
    assert result.spend is not None
    ov, gg = result.order_value(), result.spend
    values, note = economics_values(result)
    lines = [
        "Order value: the fitted Gamma-Gamma model (Fader, Hardie & Lee 2005), simulated as "
        "fitted: each buyer's spend level nu ~ Gamma(q, gamma) drawn once, their orders "
        "~ Gamma(p, nu) (economics.order_value_model=gamma_gamma).",
        "order_value_mean and order_value_cv: the lognormal matched to the mean and cv of a "
        "single purchase value, mean = p gamma / (q - 1), cv^2 = (p + q - 1) / (p (q - 2)), "
        "used with economics.order_value_model=lognormal. Gross margin and discount rate "
        "are the baseline's.",
        "Gamma-Gamma estimates (standard errors): " + ", ".join(
            f"{n} {_g(gg[n])} ({_g(gg.se_of(n), 3)})" for n in buying.GG_NAMES)
        + f"; {gg.n_obs} repeat buyers, log-likelihood {gg.loglik:.6g}",
        f"order_value_mean {_g(ov['order_value_mean'])} "
        f"({_g(ov['order_value_mean_se'], 3)}), order_value_cv {_g(ov['order_value_cv'])} "
        f"({_g(ov['order_value_cv_se'], 3)}){note}",
        "use: " + run_command(_transaction_groups(result, name))
        + "   (DIR: the folder holding business/, retention/, economics/ and uncertainty/)",
    ]
    head = _provenance(source_name, sha, "python -m sim.calibrate transactions", lines)
    return head + ("defaults:\n  - baseline\n  - _self_\n"
                   "order_value_model: gamma_gamma\n"
                   f"order_value_mean: {_yaml_number(values['order_value_mean'])}\n"
                   f"order_value_cv: {_yaml_number(values['order_value_cv'])}\n"
                   "gamma_gamma:\n"
                   + "".join(f"  {n}: {_yaml_number(gg[n])}\n" for n in buying.GG_NAMES))


def _transaction_groups(result: TransactionFit, name: str) -> list[str]:
    """The command-line choice that simulates the fitted business (``business_yaml``)."""
    return [f"business=fitted_{name}"]


# what the fit already contains, made neutral in the fitted business: the segments'
# differences in buying and spending, and the experience's effect on drop-out
NEUTRAL_SEGMENT_KEYS = ("order_value", "purchase_rate", "churn")
NEUTRAL_EXPERIENCE = {"churn_per_point": 0.0, "leave_after_bad": 0.0}


def business_yaml(result: TransactionFit, name: str, source_name: str, sha: str) -> str:
    """``business/fitted_<name>.yaml``: the fitted business in one choice
    (``business=fitted_<name>``): the fitted retention, economics and uncertainty groups,
    and neutral what the fit already contains (the segments' buying and spending
    multipliers, the experience's effect on drop-out), so that the simulator reproduces
    the business the log shows. The market, channels, journey and checkout stay the
    baseline's (a log of orders says nothing about them)."""
    segments = list(_baseline()["market"]["segments"])
    lines = [
        "The fitted business in one choice: retention, economics and uncertainty as fitted, "
        "and neutral what the fit already contains, so that it is not counted twice: the "
        "segments' order_value, purchase_rate and churn multipliers (1), the experience's "
        "effect on drop-out (experience.churn_per_point and leave_after_bad 0).",
        "The segments still differ in conversion (the funnel is not fitted from orders); "
        "the segment names are those of the package's market config. Loyalty and messaging "
        "stay off unless a scenario turns them on.",
        "use: " + run_command(_transaction_groups(result, name))
        + "   (DIR: the folder holding business/, retention/, economics/, uncertainty/); "
        "with today's customers add market.base=customers.csv (the fit's report folder)",
    ]
    head = "# @package _global_\n" + _provenance(
        source_name, sha, "python -m sim.calibrate transactions", lines)
    groups = ["retention", *(["economics"] if result.spend is not None else []), "uncertainty"]
    body = ["defaults:", *(f"  - override /{g}: fitted_{name}" for g in groups),
            "  - _self_", "market:", "  segments:"]
    body += [f"    {_yaml_key(seg)}: {_yaml_flow(dict.fromkeys(NEUTRAL_SEGMENT_KEYS, 1.0))}"
             for seg in segments]
    body += ["experience:", *(f"  {k}: {_yaml_flow(v)}" for k, v in NEUTRAL_EXPERIENCE.items())]
    return head + "\n".join(body) + "\n"


# ------------------------------------------------------------------ uncertainty
REPEAT_KEYS = ("r", "alpha_days", "a", "b")  # retention.repeat, drawn jointly
_REPEAT_FIT = ("r", "alpha", "a", "b")  # the same in the fit's names (alpha in the fit's unit)
SPEND_KEYS = ("order_value_mean", "order_value_cv")  # economics: set, unused by gamma_gamma
BASELINE_GROUP = "uncertainty/baseline.yaml"


@functools.cache
def _baseline_uncertainty() -> dict[str, Any]:
    """The package's ``uncertainty`` group ``baseline`` (the shared assumptions), plain."""
    return to_container(compose_config(["uncertainty=baseline"]))["uncertainty"] or {}


def _assumptions(node: Any, keys: tuple[str, ...] = ()
                 ) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """(key path, distribution) of every assumption of an uncertainty tree, in order."""
    if isinstance(node, Mapping) and "dist" in node:
        yield keys, node
    elif isinstance(node, Mapping):
        for k, child in node.items():
            yield from _assumptions(child, (*keys, str(k)))


def _covers(keys: tuple[str, ...], leaf: Mapping[str, Any]) -> set[str]:
    """The config keys an assumption at ``keys`` draws (a joint one: each of its keys)."""
    path = ".".join(keys)
    if leaf.get("dist") == JOINT and isinstance(leaf.get("keys"), list):
        return {f"{path}.{k}" for k in leaf["keys"]}
    return {path}


def _nested(node: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value


def _describe(leaf: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k} {v}" for k, v in leaf.items() if k != "dist")
    return f"{leaf.get('dist')}({params})"


def _spend_joint(result: TransactionFit) -> dict[str, Any]:
    """``economics.gamma_gamma``: p, q, gamma jointly lognormal, medians the estimates (as
    the economics file holds them), ``log_cov`` the fit's covariance of their logs."""
    gg = result.spend
    idx = [gg.names.index(n) for n in buying.GG_NAMES]
    log_cov = gg.log_cov[np.ix_(idx, idx)]
    log_cov = (log_cov + log_cov.T) / 2
    return {"dist": JOINT, "keys": list(buying.GG_NAMES),
            "median": [float(_yaml_number(gg[n])) for n in buying.GG_NAMES],
            "log_cov": [[float(x) for x in row] for row in log_cov]}


def uncertainty_tree(result: TransactionFit) -> tuple[dict[str, Any], list[str], list[str]]:
    """The ``uncertainty`` group of a transaction fit as a nested mapping: the fitted
    entries first (``retention.repeat`` jointly lognormal, then ``economics.gamma_gamma``
    jointly lognormal), then the
    package's shared assumptions (``uncertainty/baseline``) on every other key; the
    baseline's assumptions the fit replaces, described; and the key paths of those kept.

    The BG/NBD medians are the retention file's values; ``log_cov`` is the fit's
    covariance of the logs of (r, alpha, a, b), which is that of the logs of (r,
    alpha_days, a, b): log alpha_days differs from log alpha by a constant."""
    bg = result.bgnbd
    alpha_days = result.alpha_days[0]
    idx = [bg.names.index(n) for n in _REPEAT_FIT]
    log_cov = bg.log_cov[np.ix_(idx, idx)]
    log_cov = (log_cov + log_cov.T) / 2  # symmetric to the last digit
    median = [float(_yaml_number(v)) for v in (bg["r"], alpha_days, bg["a"], bg["b"])]
    tree: dict[str, Any] = {"retention": {"repeat": {
        "dist": JOINT, "keys": list(REPEAT_KEYS), "median": median,
        "log_cov": [[float(x) for x in row] for row in log_cov]}}}
    nodes = [("retention", "repeat")]
    if result.spend is not None:
        _nested(tree, ("economics", "gamma_gamma"), _spend_joint(result))
        # the matched lognormal's keys: set by the fitted file, unused by its gamma_gamma
        # model, so no distribution (the baseline's is dropped)
        nodes += [("economics", "gamma_gamma"), *(("economics", key) for key in SPEND_KEYS)]
    replaced = ({".".join(n) for n in nodes} | {f"retention.repeat.{k}" for k in REPEAT_KEYS}
                | {f"economics.gamma_gamma.{k}" for k in buying.GG_NAMES})
    dropped, kept = [], []
    for keys, leaf in _assumptions(_baseline_uncertainty()):
        # one distribution per key, and nothing below (or above) a node the fit takes
        if _covers(keys, leaf) & replaced or any(
                keys[:len(n)] == n or n[:len(keys)] == keys for n in nodes):
            dropped.append(f"{'.'.join(keys)} {_describe(leaf)}")
        else:
            _nested(tree, keys, copy.deepcopy(dict(leaf)))
            kept.append(".".join(keys))
    return tree, dropped, kept


def _yaml_exact(x: float) -> str:
    """A float that reads back as the same float (YAML 1.1: a dot in the mantissa)."""
    text = repr(float(x))
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}.get(text, text)


def _yaml_flow(value: Any) -> str:
    """A value in YAML flow style that reads back as ``value``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _yaml_exact(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_flow(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_yaml_key(k)}: {_yaml_flow(v)}" for k, v in value.items()) + "}"
    return _yaml_str(value)


def _comment_lines(text: str, pad: str) -> list[str]:
    return [f"{pad}# {part}" for part in textwrap.wrap(
        _comment(text), 94 - len(pad), break_on_hyphens=False, subsequent_indent="  ")]


def _yaml_tree(node: Mapping[str, Any], before: Mapping[str, Sequence[str]],
               after: Mapping[str, str], keys: tuple[str, ...] = ()) -> list[str]:
    """An uncertainty tree as block YAML: a distribution on one line (a joint one a
    parameter a line, its matrix a row a line), comments before and after key paths."""
    out = []
    pad = "  " * len(keys)
    for k, v in node.items():
        path = ".".join((*keys, str(k)))
        for text in before.get(path, ()):
            out += _comment_lines(text, pad)
        tail = f"  # {_comment(after[path])}" if path in after else ""
        if isinstance(v, Mapping) and "dist" not in v:
            out.append(f"{pad}{_yaml_key(k)}:{tail}")
            out += _yaml_tree(v, before, after, (*keys, str(k)))
        elif isinstance(v, Mapping) and v.get("dist") == JOINT:
            out.append(f"{pad}{_yaml_key(k)}:{tail}")
            for name, value in v.items():
                if name == "log_cov" and isinstance(value, list):
                    out.append(f"{pad}  {name}:")
                    out += [f"{pad}    - {_yaml_flow(row)}" for row in value]
                else:
                    out.append(f"{pad}  {_yaml_key(name)}: {_yaml_flow(value)}")
        else:
            out.append(f"{pad}{_yaml_key(k)}: {_yaml_flow(v)}{tail}")
    return out


def uncertainty_yaml(result: TransactionFit, name: str, source_name: str, sha: str) -> str:
    """``uncertainty/fitted_<name>.yaml``: the fit's uncertainty for a PSA, with the
    package's shared assumptions on the keys the fit does not set, written out (a defaults
    list would merge the baseline's ``retention.repeat`` entries into the joint one, which
    ``read_uncertainty`` refuses)."""
    tree, dropped, kept = uncertainty_tree(result)
    log_cov = np.asarray(tree["retention"]["repeat"]["log_cov"])
    sd = np.sqrt(np.diag(log_cov))
    corr = log_cov / np.outer(sd, sd)
    before: dict[str, list[str]] = {"retention": [
        "Repeat buying (BG/NBD): r, alpha_days, a, b jointly lognormal, medians the estimates "
        f"of retention/fitted_{name}.yaml, log_cov the covariance of the logs of the "
        "estimates (the inverse Hessian of the log-likelihood on the log scale the fit "
        "works on; log alpha_days = log alpha + a constant, so the same variances). "
        f"sd of the logs {', '.join(_g(x, 3) for x in sd)}; correlations of the logs: "
        + ", ".join(f"{REPEAT_KEYS[i]}-{REPEAT_KEYS[j]} {corr[i, j]:.2f}"
                    for i in range(4) for j in range(i + 1, 4)) + "."]}
    fitted_sections = {"retention"}
    if result.spend is not None:
        gg_cov = np.asarray(tree["economics"]["gamma_gamma"]["log_cov"])
        gg_sd = np.sqrt(np.diag(gg_cov))
        gg_corr = gg_cov / np.outer(gg_sd, gg_sd)
        names = buying.GG_NAMES
        before["economics"] = [
            f"Spend (Gamma-Gamma): p, q, gamma jointly lognormal, medians the estimates of "
            f"economics/fitted_{name}.yaml, log_cov the covariance of the logs of the "
            f"estimates. sd of the logs {', '.join(_g(x, 3) for x in gg_sd)}; correlations "
            "of the logs: " + ", ".join(f"{names[i]}-{names[j]} {gg_corr[i, j]:.2f}"
                                        for i in range(3) for j in range(i + 1, 3))
            + ". q is cut at 1 (the mean order is finite only above). order_value_mean and "
            "order_value_cv have no distribution: the fitted economics simulates "
            "gamma_gamma, which does not read them."]
        fitted_sections.add("economics")
    after = {k: f"shared, from {BASELINE_GROUP}" for k in kept
             if k.split(".", 1)[0] in fitted_sections}
    first_shared = next((k for k in tree if k not in fitted_sections), None)
    if first_shared is not None:
        before[first_shared] = [
            f"The shared assumptions of {BASELINE_GROUP} (its comments give their sources) "
            "on the keys the fit does not set, as written there."]
    lines = [
        "The uncertainty of the fit, for a probabilistic sensitivity analysis (PSA): each "
        "draw sets the fitted keys to values as likely as the data allow (the estimates' "
        "sampling distribution, asymptotically), together with the shared assumptions of "
        f"the package's {BASELINE_GROUP} on every key the fit does not set.",
        "A point run (psa.draws=0) ignores this file: every key keeps its value.",
        "use (a PSA): " + psa_command(_transaction_groups(result, name))
        + "   (DIR: the folder holding business/, retention/, economics/ and uncertainty/; "
        "compare=[...]: the scenarios to decide between)",
        f"replaced from {BASELINE_GROUP}: " + ("; ".join(dropped) if dropped else "nothing"),
    ]
    head = _provenance(source_name, sha, "python -m sim.calibrate transactions", lines)
    return head + "\n".join(_yaml_tree(tree, before, after)) + "\n"


def check_composed(texts: Mapping[str, str], groups: Sequence[str]) -> None:
    """The fitted files (``texts``: group/file name to text) composed together as the
    simulator will compose them (``groups``: the command's options), from a temporary
    folder: the ``uncertainty`` group must read as written and ``read_uncertainty`` must
    accept it (every key exists, every median in its key's range, one distribution per
    key), and a draw must be finite.

    Raises
    ------
    CalibrationError : what does not compose or read, with the key path.
    """
    with tempfile.TemporaryDirectory(prefix="calibrate-") as tmp:
        for rel, text in texts.items():
            target = Path(tmp, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        try:
            cfg = to_container(compose_config(list(groups), config_dirs=[tmp]))
            unc = read_uncertainty({"baseline": cfg})
        except InputError as err:
            raise CalibrationError("the fitted configs do not compose into a valid "
                                   f"uncertainty group: {' '.join(str(err).split())}"
                                   ) from None
    for rel, text in texts.items():
        if rel.startswith("uncertainty/") and cfg["uncertainty"] != yaml.safe_load(text):
            raise CalibrationError(f"the fitted {rel} does not read back as written")
    draw = unc.from_uniforms(np.full((1, len(unc)), 0.5))
    if not np.all(np.isfinite(draw)):
        raise CalibrationError("the fitted uncertainty gives a draw that is not a number")


# ------------------------------------------------------------------ journey
def _journey_dict(result: JourneyFit, name: str) -> dict[str, Any]:
    """The fitted journey as the simulator's ``journey`` group."""
    stages: dict[str, Any] = {}
    for stage in result.data.order:
        f = result.stages[stage]
        dw = f.dwell
        dwell: dict[str, Any] = {"kind": dw.kind, "mean_days": float(f"{dw.mean_days:.6g}")}
        if dw.kind in CV_RANGE:
            lo, hi = CV_RANGE[dw.kind]
            dwell["cv"] = float(f"{min(max(dw.cv, lo), hi):.6g}")
        exits = {e.target: float(f"{e.prob:.6f}") for e in f.exits if e.target != funnel.LOST
                 and e.prob > 0}
        excess = sum(exits.values()) - 1.0
        if excess > 0:  # rounding: take it from the largest exit
            top = max(exits, key=exits.__getitem__)
            exits[top] = round(exits[top] - excess, 9)
        stages[stage] = {"dwell": dwell, "exits": exits, "levers": [], "experience": 0.0}
    report = {s: [s] for s in result.data.order} | {
        "purchase": ["purchase"], "retention": ["retention"], "advocacy": ["advocacy"]}
    return {"name": f"fitted_{name}", "description": f"fitted from {result.data.source}",
            "stages": stages, "report": report, "content_quality": 1.0,
            "site_usability": 1.0, "social_proof": 0.0}


def referral_entry(order: Sequence[str]) -> tuple[str, str | None]:
    """Where referred prospects can enter the fitted journey: the baseline's
    ``advocacy.referral_entry_stage`` when the journey has it, else the second stage (the
    first after awareness), with the override to pass."""
    default = _baseline()["advocacy"]["referral_entry_stage"]
    if default in order:
        return default, None
    entry = order[1] if len(order) > 1 else order[0]
    return entry, f"advocacy.referral_entry_stage={_hydra_value(entry)}"


def journey_yaml(result: JourneyFit, name: str, source_name: str, sha: str) -> str:
    """``journey/fitted_<name>.yaml``: the stage graph with fitted dwell times and exits,
    the provenance and every estimate's 95% CI in comments."""
    d = result.data
    j = _journey_dict(result, name)
    lines = [
        f"Journey fitted from {d.n_customers:,} customers' stage entries, "
        f"{d.start.date()} to {d.end.date()}; losses "
        + ("recorded in the log" if d.lost_recorded else
           "inferred (customers whose entries stop may be lost or still in the stage)") + ".",
        "Dwell kind chosen by AIC; exits are the probabilities after a visit (the rest is "
        "lost). Levers and experience points are not estimated (none set here).",
        "use: " + run_command(_journey_groups(d.order, name))
        + "   (DIR: the folder holding journey/)",
    ]
    out = [_provenance(source_name, sha, "python -m sim.calibrate journey", lines).rstrip("\n")]
    out += [f"name: {_yaml_str(j['name'])}", f"description: {_yaml_str(j['description'])}",
            "stages:"]
    for stage, st in j["stages"].items():
        f = result.stages[stage]
        dw = f.dwell
        ci = dw.interval()
        dwell = ", ".join(f"{k}: {v if isinstance(v, str) else _yaml_number(v)}"
                          for k, v in st["dwell"].items())
        out.append(f"  {_yaml_key(stage)}:")
        note = "" if dw.kind == "fixed" else (
            f"  # mean 95% CI [{_g(ci['mean_days'][0])}, {_g(ci['mean_days'][1])}]"
            + (f", cv [{_g(ci['cv'][0])}, {_g(ci['cv'][1])}]" if dw.kind != "exponential"
               else ""))
        out.append(f"    dwell: {{{dwell}}}{note}")
        exits = ", ".join(f"{_yaml_key(k)}: {_yaml_number(v)}" for k, v in st["exits"].items())
        cis = _comment("; ".join(f"{e.target} {e.prob:.4f} [{e.low:.4f}, {e.high:.4f}]"
                                 for e in f.exits))
        out.append(f"    exits: {{{exits}}}")
        out.append(f"    # exit probabilities [95% CI]: {cis}")
        out.append("    levers: []")
        out.append("    experience: 0.0")
    out.append("report:")
    for label, states in j["report"].items():
        out.append(f"  {_yaml_key(label)}: [{', '.join(_yaml_str(s) for s in states)}]")
    out += ["content_quality: 1.0", "site_usability: 1.0", "social_proof: 0.0"]
    return "\n".join(out) + "\n"


def _journey_groups(order: Sequence[str], name: str) -> list[str]:
    override = referral_entry(order)[1]
    return [f"journey=fitted_{name}", *([override] if override else [])]


def _hydra_value(text: str) -> str:
    """``text`` as a command-line override value Hydra reads back as ``text``: plain when it
    can be, else single-quoted with quotes, trailing backslashes and ``${`` escaped."""
    if _plain(text):
        return text
    text = _omegaconf_literal(text)
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return f"'{text}'"
