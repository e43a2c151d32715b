"""moto's server, with IAM conditions evaluated for S3 requests (the policy tests of tresor).

moto 5.2.5 checks the Action and Resource of IAM policies but ignores their Condition blocks
(it evaluates only StringEquals on sts:ExternalId, in trust policies), authorizes S3's
`PUT ?retention` and `PUT ?legal-hold` as s3:PutObject, and checks no second action for a PUT
with Object Lock headers. So, before running moto's server, this replaces the permission check
of S3 requests (moto.iam.access_control.S3IAMRequest.check_action_permitted) with one that:

* builds the request context: aws:SecureTransport ("true" always: moto serves plain HTTP on
  loopback, so the TLS conditions are NOT tested), s3:prefix, s3:delimiter, s3:max-keys
  (listings), s3:if-none-match, s3:x-amz-server-side-encryption and
  s3:x-amz-server-side-encryption-aws-kms-key-id, s3:object-lock-mode,
  s3:object-lock-retain-until-date, s3:object-lock-remaining-retention-days (whole days until
  that date, a started day counting as one) and s3:object-lock-legal-hold, from the headers of
  a PUT or the XML body of `?retention` / `?legal-hold`;
* names the actions S3 authorizes: `PUT ?retention` is s3:PutObjectRetention, `PUT ?legal-hold`
  s3:PutObjectLegalHold; a PUT with a retention header also needs s3:PutObjectRetention, one
  with a legal-hold header s3:PutObjectLegalHold, and a request with
  `x-amz-bypass-governance-retention: true` also s3:BypassGovernanceRetention;
* evaluates every statement of the caller's policies by AWS's documented rules: an explicit
  Deny wins, else some Allow must match, for each action; Action/NotAction and
  Resource/NotResource with * and ? wildcards; all condition operators of a statement must
  hold, a key with several values matches if any value does; a key missing from the request
  makes a condition false, except for negated operators (StringNotEquals, StringNotLike,
  NumericNotEquals …: true), ...IfExists operators (true) and Null (tests presence).
  Operators: String(Not)Equals(IgnoreCase), String(Not)Like, Numeric*, Date*, Bool, Null, each
  also with IfExists; any other operator makes its statement not match (fail closed).

This is tresor's reading of the AWS documentation, not AWS itself: docs/cli.md says what the
tests therefore show and what only AWS can.

Usage: python moto_iam_conditions.py [moto_server arguments], e.g. -H 127.0.0.1 -p 5000.
"""

import datetime
import fnmatch
import math
import re
import sys
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlparse

from moto.iam import access_control
from moto.iam.access_control import IAMPolicy, S3IAMRequest

NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike",
           "NumericNotEquals", "DateNotEquals"}


def glob(pattern, value):
    """IAM wildcard match: * any run of characters, ? exactly one; case-sensitive."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.DOTALL) is not None


def parse_date(s):
    s = str(s).strip().replace("Z", "+00:00")
    d = datetime.datetime.fromisoformat(s)
    return d if d.tzinfo else d.replace(tzinfo=datetime.timezone.utc)


def compare(base, actual, expected):
    """The positive form of operator `base` on one actual and one expected value."""
    a, e = str(actual), str(expected)
    if base in ("StringEquals", "StringNotEquals"):
        return a == e
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return a.lower() == e.lower()
    if base in ("StringLike", "StringNotLike"):
        return glob(e, a)
    if base == "Bool":
        return a.lower() == e.lower()
    if base.startswith("Numeric"):
        x, y = float(a), float(e)
        op = base[len("Numeric"):].replace("Not", "")
    elif base.startswith("Date"):
        x, y = parse_date(a), parse_date(e)
        op = base[len("Date"):].replace("Not", "")
    else:
        raise ValueError(f"condition operator {base} is not evaluated")
    return {"Equals": x == y, "LessThan": x < y, "LessThanEquals": x <= y,
            "GreaterThan": x > y, "GreaterThanEquals": x >= y}[op]


def condition_holds(op, key, expected, ctx):
    values = expected if isinstance(expected, list) else [expected]
    if op == "Null":
        return (key not in ctx) == (str(values[0]).lower() == "true")
    if_exists = op.endswith("IfExists")
    base = op[: -len("IfExists")] if if_exists else op
    if key not in ctx:
        return if_exists or base in NEGATED
    hit = any(compare(base, ctx[key], v) for v in values)
    return not hit if base in NEGATED else hit


def as_list(x):
    return x if isinstance(x, list) else [x]


def statement_matches(st, action, resource, ctx):
    if "Action" in st:
        acted = any(glob(p.lower(), action.lower()) for p in as_list(st["Action"]))
    else:
        acted = not any(glob(p.lower(), action.lower()) for p in as_list(st["NotAction"]))
    if not acted:
        return False
    if "Resource" in st:
        placed = any(glob(p, resource) for p in as_list(st["Resource"]))
    elif "NotResource" in st:
        placed = not any(glob(p, resource) for p in as_list(st["NotResource"]))
    else:
        placed = True
    if not placed:
        return False
    try:
        return all(condition_holds(op, key, exp, ctx)
                   for op, kv in st.get("Condition", {}).items() for key, exp in kv.items())
    except (ValueError, KeyError) as e:
        print(f"moto_iam_conditions: statement not evaluated: {e}", file=sys.stderr)
        return False


def header(req, name):
    for k, v in req._headers.items():
        if k.lower() == name.lower():
            return v
    return None


def xml_text(body, tag):
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    for el in root.iter():
        if el.tag.split("}")[-1] == tag:
            return (el.text or "").strip()
    return None


def lock_context(req, query, ctx):
    body = req._body or b""
    if isinstance(body, str):
        body = body.encode()
    if "retention" in query:
        mode, until = xml_text(body, "Mode"), xml_text(body, "RetainUntilDate")
    else:
        mode = header(req, "x-amz-object-lock-mode")
        until = header(req, "x-amz-object-lock-retain-until-date")
    hold = xml_text(body, "Status") if "legal-hold" in query else header(
        req, "x-amz-object-lock-legal-hold")
    if mode:
        ctx["s3:object-lock-mode"] = mode
    if until:
        ctx["s3:object-lock-retain-until-date"] = until
        left = (parse_date(until) - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        ctx["s3:object-lock-remaining-retention-days"] = str(max(0, math.ceil(left / 86400)))
    if hold:
        ctx["s3:object-lock-legal-hold"] = hold


def request_context(req, query):
    ctx = {"aws:SecureTransport": "true"}
    for q, key in (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"),
                   ("max-keys", "s3:max-keys")):
        if q in query:
            ctx[key] = query[q][0]
    for h in ("x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id"):
        v = header(req, h)
        if v is not None:
            ctx["s3:" + h] = v
    if req._method == "PUT" and header(req, "If-None-Match") is not None:
        ctx["s3:if-none-match"] = header(req, "If-None-Match")
    if req._method == "PUT":
        lock_context(req, query, ctx)
    return ctx


def actions_of(req, query):
    action = req._action
    if req._method == "PUT" and "retention" in query:
        action = "s3:PutObjectRetention"
    elif req._method == "PUT" and "legal-hold" in query:
        action = "s3:PutObjectLegalHold"
    actions = [action]
    if action == "s3:PutObject":
        if header(req, "x-amz-object-lock-mode") or header(
                req, "x-amz-object-lock-retain-until-date"):
            actions.append("s3:PutObjectRetention")
        if header(req, "x-amz-object-lock-legal-hold"):
            actions.append("s3:PutObjectLegalHold")
    if str(header(req, "x-amz-bypass-governance-retention") or "").lower() == "true":
        actions.append("s3:BypassGovernanceRetention")
    return actions


def check_action_permitted(self, resource):
    query = parse_qs(urlparse(self._path).query, keep_blank_values=True)
    ctx = request_context(self, query)
    statements = []
    for policy in self._access_key.collect_policies():
        doc = IAMPolicy(policy)._policy_json
        statements.extend(as_list(doc["Statement"]))
    for action in actions_of(self, query):
        matching = [s for s in statements if statement_matches(s, action, resource, ctx)]
        if any(s["Effect"] == "Deny" for s in matching) or not matching:
            print(f"moto_iam_conditions: denied {action} on {resource} with {ctx}",
                  file=sys.stderr)
            self._raise_access_denied()


S3IAMRequest.check_action_permitted = check_action_permitted
access_control.TRESOR_CONDITIONS = True

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
