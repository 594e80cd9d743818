#!/bin/sh
# Makes docs/images/report.png with billing's own commands: a small merchant's November to
# February against a long-lived sandbox gateway (`billing sandbox`, which keeps its ledger, so
# refunds and a card that declines twice then approves behave as they would), one
# `billing run-once` a day, then `billing report` for December to February, rendered by
# headless Chromium, made small by pngquant when it is there. Run from the repository root; takes
# about five minutes. Needs the venv (.venv) and Chromium (`apt-get install -y chromium`).
set -eu

work=$(mktemp -d)
port=$(.venv/bin/python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
.venv/bin/billing sandbox --port "$port" > "$work/sandbox.log" 2>&1 &
sandbox=$!
trap 'kill "$sandbox"; wait "$sandbox" || true; rm -rf "$work"' EXIT
export BILLING_DATABASE_URL="sqlite:///$work/shop.db" BILLING_OUTBOX_DIR="$work/outbox"
export BILLING_STATE_DIR="$work/state" BILLING_PLANS_DIR="$PWD/plans"
export BILLING_TIMEZONE=America/Toronto BILLING_MERCHANT_NAME="Bean & Leaf Coffee"
export IOTPAY_BASE_URL="http://127.0.0.1:$port/v3/" IOTPAY_MCH_ID=10000701
export IOTPAY_MCH_KEY=sandbox-secret-key IOTPAY_LOGIN_NAME=sandbox
export BILLING_PUBLIC_URL=http://127.0.0.1:9  # nothing receives notifies: replies suffice
APPROVE=6250947000000014 FLAKY=6250947000000063 FUNDS=6250947000000022
sleep 2

b() { .venv/bin/billing --now "$day" "$@" 2>/dev/null >/dev/null; }
join() {  # customer-id "Name" card plan: a customer with a card, subscribed without a trial
    b customers add "$1" --email "$1@example.com" --name "$2"
    printf '%s\n123\n' "$3" | b cards add-direct "$1" --holder "$2" --expiry 1230
    b subscriptions create "$1" "$4" --trial-days 0
}
sub() { .venv/bin/billing subscriptions list --json |
        .venv/bin/python -c "import json,sys; print(next(s['id'] for s in json.load(sys.stdin)
                             if s['customer'] == sys.argv[1]))" "$1"; }
invoice() { .venv/bin/billing subscriptions show "$(sub "$1")" --json |
            .venv/bin/python -c "import json,sys; print(json.load(sys.stdin)['invoices'][-1]['number'])"; }

day=2025-11-01T12:00:00Z
b db upgrade
b plans apply
.venv/bin/python - <<'EOF' > "$work/days"
from datetime import date, timedelta
d = date(2025, 11, 1)
while d <= date(2026, 3, 2):
    print(f"{d}T12:00:00Z")
    d += timedelta(days=1)
EOF
while read -r day; do
    case "$day" in
    2025-11-01*) join ada "Ada Moreau" $APPROVE starter-monthly
                 join ben "Ben Okafor" $APPROVE starter-monthly
                 join cyd "Cyd Laurent" $APPROVE starter-monthly
                 join dia "Dia Chen" $APPROVE pro-monthly
                 join eli "Eli Novak" $APPROVE pro-annual ;;
    2025-11-15*) join fox "Fox Bakery" $APPROVE coffee-weekly
                 join gia "Gia Russo" $APPROVE coffee-weekly ;;
    2025-12-03*) join hal "Hal Singh" $APPROVE starter-monthly
                 join ivo "Ivo Petrov" $APPROVE pro-monthly
                 join jun "Jun Park" $APPROVE starter-monthly ;;
    2025-12-10*) b subscriptions change-plan "$(sub ada)" --plan pro-monthly --when now ;;
    2025-12-20*) b subscriptions cancel "$(sub cyd)" ;;
    2026-01-05*) join kai "Kai Ito" $FLAKY starter-monthly
                 join lux "Lux Media" $APPROVE pro-monthly ;;
    2026-01-10*) b subscriptions change-plan "$(sub dia)" --plan starter-monthly ;;
    2026-01-12*) join max "Max Weber" $FUNDS starter-monthly ;;
    2026-01-20*) b refund "$(invoice ben)" --amount 5.00 --reason "late delivery" ;;
    2026-02-02*) join noa "Noa Levi" $FUNDS starter-monthly
                 join oli "Oli Brown" $APPROVE coffee-weekly
                 join pia "Pia Costa" $APPROVE starter-monthly ;;
    2026-02-04*) b void "$(invoice hal)" ;;
    2026-02-05*) printf '%s\n123\n' $APPROVE | b cards add-direct noa --holder "Noa Levi" --expiry 1230 ;;
    2026-02-15*) b subscriptions cancel "$(sub gia)" ;;
    2026-02-20*) join quy "Quy Tran" $FUNDS starter-monthly ;;
    esac
    b run-once
done < "$work/days"

day=2026-03-02T12:00:00Z
b report --from 2025-12-01 --to 2026-02-28 --output "$work/report.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,1800 \
    --screenshot="$work/report.png" "file://$work/report.html" 2>/dev/null
if command -v pngquant >/dev/null; then
    pngquant --quality 70-95 --speed 1 --force --output docs/images/report.png "$work/report.png"
else
    cp "$work/report.png" docs/images/report.png
fi
echo "wrote docs/images/report.png"
