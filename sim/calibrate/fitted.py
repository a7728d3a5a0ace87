"""The fitted configs as YAML: ``retention``, ``economics`` and ``journey`` groups with
their provenance and estimates in comments, each checked against the simulator's schema
before anything is written, and the command that runs the simulator on them.

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
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.calibrate import buying, funnel
from sim.calibrate.journey import JourneyFit
from sim.calibrate.mle import CalibrationError
from sim.calibrate.transactions import TransactionFit
from sim.model.config import compose_config, to_container
from sim.model.distributions import CV_RANGE
from sim.model.spec import SpecError, build_spec

__all__ = ["economics_yaml", "journey_yaml", "referral_entry", "retention_yaml",
           "run_command"]


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
        + "   (DIR: the folder holding retention/ and economics/)",
        "acting on top of the fit: segment multipliers (market.segments), loyalty and "
        "messaging, and experience (experience.churn_per_point, experience.leave_after_bad); "
        "to simulate the fitted population as it was, keep loyalty and messaging off and "
        "add experience.churn_per_point=0 experience.leave_after_bad=0",
    ]
    head = _provenance(source_name, sha, "python -m sim.calibrate transactions", lines)
    body = (f"model: repeat_purchase\nrepeat:\n  r: {_yaml_number(bg['r'])}\n"
            f"  alpha_days: {_yaml_number(alpha_days)}\n  a: {_yaml_number(bg['a'])}\n"
            f"  b: {_yaml_number(bg['b'])}\n")
    return head + body


def economics_values(result: TransactionFit) -> tuple[dict[str, float], str]:
    """The fitted ``economics`` keys (the cv brought into the simulator's range) and a note
    when it had to be."""
    ov = result.order_value()
    cv = ov["order_value_cv"]
    lo, hi = 0.01, 10.0  # spec: order_value_cv in (0, 10]
    note = ""
    if not lo <= cv <= hi:
        note = f" (fitted cv {_g(cv)} is outside [{lo:g}, {hi:g}]; the nearest value is used)"
        cv = min(max(cv, lo), hi) if np.isfinite(cv) else hi
    return {"order_value_mean": ov["order_value_mean"], "order_value_cv": cv}, note


def economics_yaml(result: TransactionFit, name: str, source_name: str, sha: str) -> str:
    """``economics/fitted_<name>.yaml``: the baseline economics with the order value's mean
    and cv from the Gamma-Gamma fit."""
    assert result.spend is not None
    ov, gg = result.order_value(), result.spend
    values, note = economics_values(result)
    lines = [
        "Order value: the simulator's lognormal (mean, cv) matched to the mean and cv of a "
        "single purchase value under the fitted Gamma-Gamma model (Fader, Hardie & Lee 2005):",
        "mean = p gamma / (q - 1), cv^2 = (p + q - 1) / (p (q - 2)). Gross margin and "
        "discount rate are the baseline's.",
        "Gamma-Gamma estimates (standard errors): " + ", ".join(
            f"{n} {_g(gg[n])} ({_g(gg.se_of(n), 3)})" for n in buying.GG_NAMES)
        + f"; {gg.n_obs} repeat buyers, log-likelihood {gg.loglik:.6g}",
        f"order_value_mean {_g(ov['order_value_mean'])} "
        f"({_g(ov['order_value_mean_se'], 3)}), order_value_cv {_g(ov['order_value_cv'])} "
        f"({_g(ov['order_value_cv_se'], 3)}){note}",
        "use: " + run_command(_transaction_groups(result, name))
        + "   (DIR: the folder holding retention/ and economics/)",
    ]
    head = _provenance(source_name, sha, "python -m sim.calibrate transactions", lines)
    return head + ("defaults:\n  - baseline\n  - _self_\n"
                   f"order_value_mean: {_yaml_number(values['order_value_mean'])}\n"
                   f"order_value_cv: {_yaml_number(values['order_value_cv'])}\n")


def _transaction_groups(result: TransactionFit, name: str) -> list[str]:
    return [f"retention=fitted_{name}"] + ([f"economics=fitted_{name}"]
                                           if result.spend is not None else [])


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
