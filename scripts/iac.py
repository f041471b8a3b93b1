"""The Python half of scripts/iac.sh, run with the SAM CLI's venv (samcli, boto3).

Usage: python iac.py COMMAND ARGS...
  overrides SAMCONFIG ENV [KEY=VALUE...]
      The deploy's parameter overrides, NUL-separated, each as KEY="VALUE"
      (quoted: SAM splits unquoted values at spaces, so `rate(10 minutes)` would
      arrive as `rate(10`): parameter_overrides of samconfig.toml (section
      ENV.deploy.parameters, what `sam deploy --guided` saved) with the given
      keys set over them, so schedule.env always decides IngestSchedule.
  has-saved-parameters SAMCONFIG ENV
      Exit 0 if samconfig.toml holds saved parameters for ENV (a deploy happened).
  check-template TEMPLATE PARAMETER=SCHEDULE...
      The schedules' one definition is schedule.env: the template must take each
      as its parameter (IngestSchedule, FeedSchedule), with no default of its own,
      and every schedule of the template must be one of them.
  check-localstack ENDPOINT HEALTH_JSON
      LocalStack (its /_localstack/health answer) runs every service the stack uses.
  localstack-resources DATABASE_URL
      Creates the artifact bucket and the database secret; prints the secret's ARN.
  stack-outputs STACK_NAME
      Prints the outputs of a deployed stack.
"""

import json
import re
import sys
import tomllib


def fail(message):
    sys.exit(f"iac: ERROR: {message}")


def saved_overrides(path, env):
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        return ""
    return config.get(env, {}).get("deploy", {}).get("parameters", {}).get("parameter_overrides") or ""


def overrides(path, env, *pairs):
    from samcli.cli.types import CfnParameterOverridesType

    saved = saved_overrides(path, env)
    params = CfnParameterOverridesType().convert(saved, None, None) if saved else {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        if key in params and params[key] != value:
            print(f"iac: {key}: {value!r} (samconfig.toml had {params[key]!r})", file=sys.stderr)
        params[key] = value
    for key, value in params.items():
        if '"' in value:
            fail(f"parameter {key} has a double quote, which SAM cannot pass")
        sys.stdout.write(f'{key}="{value}"\0')


def has_saved_parameters(path, env):
    sys.exit(0 if saved_overrides(path, env) else 1)


def schedule_uses(template):
    """Every schedule expression of the template: SAM Schedule/ScheduleV2 events,
    EventBridge rules and schedules, as (where, value)."""
    uses = []
    for name, res in (template.get("Resources") or {}).items():
        props = res.get("Properties") or {}
        if res.get("Type") in ("AWS::Events::Rule", "AWS::Scheduler::Schedule") and "ScheduleExpression" in props:
            uses.append((f"Resources/{name}/ScheduleExpression", props["ScheduleExpression"]))
        for ev_name, ev in (props.get("Events") or {}).items():
            if isinstance(ev, dict) and ev.get("Type") in ("Schedule", "ScheduleV2"):
                ev_props = ev.get("Properties") or {}
                key = "Schedule" if ev.get("Type") == "Schedule" else "ScheduleExpression"
                uses.append((f"Resources/{name}/Events/{ev_name}/{key}", ev_props.get(key)))
    return uses


def literal_schedules(node, where, errors):
    """No string anywhere may be a literal rate(...)/cron(...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            literal_schedules(value, f"{where}/{key}", errors)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            literal_schedules(value, f"{where}/{i}", errors)
    elif isinstance(node, str) and re.match(r"\s*(rate|cron)\(", node):
        errors.append(f"{where} is a literal schedule {node!r}: use a parameter from schedule.env")


def check_template(path, *pairs):
    from samcli.yamlhelper import yaml_parse

    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    errors = []
    schedules = dict(pair.split("=", 1) for pair in pairs)
    for name, schedule in schedules.items():
        param = (template.get("Parameters") or {}).get(name)
        if param is None:
            errors.append(f"template.yaml has no parameter {name}")
            continue
        if "Default" in param:
            errors.append(f"parameter {name} has a Default: the schedule must come only from schedule.env")
        pattern = param.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, schedule):
            errors.append(f"schedule.env's {schedule!r} does not match {name}'s AllowedPattern {pattern!r}")
    uses = schedule_uses(template)
    used = {value.get("Ref") for _, value in uses if isinstance(value, dict)}
    for name in schedules:
        if name not in used:
            errors.append(f"template.yaml never uses the schedule parameter {name}")
    for where, value in uses:
        if not (isinstance(value, dict) and value.get("Ref") in schedules):
            names = " or ".join(f"!Ref {n}" for n in schedules)
            errors.append(f"{where} is {value!r}, not {names} (schedules come from schedule.env)")
    literal_schedules({k: v for k, v in template.items() if k != "Parameters"}, "", errors)
    for e in errors:
        print(f"iac: ERROR: {e}", file=sys.stderr)
    sys.exit(1 if errors else 0)


def check_localstack(endpoint, raw):
    try:
        health = json.loads(raw)
    except ValueError:
        fail(f"{endpoint}/_localstack/health did not answer JSON: is this LocalStack?")
    services = health.get("services", {})
    need = ["cloudformation", "lambda", "iam", "sts", "s3", "sqs", "events", "logs", "secretsmanager", "cloudwatch"]
    missing = [s for s in need if services.get(s) not in ("available", "running")]
    if missing:
        have = ", ".join(sorted(s for s, st in services.items() if st in ("available", "running"))) or "none"
        hint = ""
        if "lambda" in missing:
            hint = (
                " The local stack of `just up` runs LocalStack without Docker and with S3 only;"
                " deploy-localstack needs LocalStack's Docker image (Lambda runs functions in containers),"
                " see docs/aws.md."
            )
        fail(f"LocalStack at {endpoint} lacks {', '.join(missing)} (it has: {have}).{hint}")
    print(f"iac: LocalStack {health.get('version', '?')} ({health.get('edition', '?')}) at {endpoint}: services ok")


def localstack_resources(db_url):
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3")
    try:
        s3.head_bucket(Bucket="crypto-pipeline-sam-artifacts")
    except ClientError:
        s3.create_bucket(Bucket="crypto-pipeline-sam-artifacts")
    sm = boto3.client("secretsmanager")
    name = "crypto-pipeline/database"
    try:
        arn = sm.describe_secret(SecretId=name)["ARN"]
        sm.put_secret_value(SecretId=name, SecretString=db_url)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        arn = sm.create_secret(Name=name, SecretString=db_url)["ARN"]
    print(arn)


def stack_outputs(stack_name):
    import boto3

    stack = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    for o in stack.get("Outputs", []):
        print(f"iac:   {o['OutputKey']}: {o['OutputValue']}")


COMMANDS = {
    "overrides": overrides,
    "has-saved-parameters": has_saved_parameters,
    "check-template": check_template,
    "check-localstack": check_localstack,
    "localstack-resources": localstack_resources,
    "stack-outputs": stack_outputs,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
