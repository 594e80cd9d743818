#!/bin/sh
# Renders docs/images/invoice-en.png and invoice-fr.png with the project's own commands: a
# sandbox database in a throwaway folder, the example plans plus Quebec taxes, one customer,
# one charge, then `billing invoices render --format pdf` and poppler's pdftoppm for page 1.
# Needs: the package installed (.venv), poppler-utils (pdftoppm). Run from the repository root:
#   sh docs/images/make-invoice-png.sh
set -eu
repo=$(pwd)
billing="$repo/.venv/bin/billing"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$repo/plans" "$work/plans"
cat > "$work/plans/taxes.yaml" <<'YAML'
taxes:
  - {name: GST, rate: "5", provinces: [AB, BC, MB, NT, NU, QC, SK, YT]}
  - {name: QST, rate: "9.975", provinces: [QC]}
YAML
cd "$work"
export BILLING_MERCHANT_NAME="Maple Cloud"
export BILLING_MERCHANT_LEGAL_NAME="Maple Cloud Software Inc."
export BILLING_MERCHANT_ADDRESS='400 rue Saint-Paul Ouest\nMontréal QC  H2Y 2A6\nCanada'
export BILLING_MERCHANT_EMAIL="billing@maplecloud.example"
export BILLING_MERCHANT_LOGO="$repo/docs/images/example-logo.svg"
export BILLING_GST_HST_NUMBER="123456789 RT0001"
export BILLING_QST_NUMBER="1234567890 TQ0001"
now=2026-03-01T15:00:00Z
"$billing" --sandbox --now $now customers add cus_42 --email ann@example.com --name "Ann Lee" \
  --timezone America/Toronto --province QC --locale fr >/dev/null
printf '6250947000000014\n123\n' | "$billing" --sandbox --now $now cards add-direct cus_42 \
  --holder "ANN LEE" --expiry 1230 >/dev/null 2>&1
"$billing" --sandbox --now $now subscriptions create cus_42 pro-monthly --trial-days 0 \
  --quantity 2 >/dev/null
"$billing" --sandbox --now 2026-03-01T15:05:00Z run-once >/dev/null
for locale in en fr; do
  "$billing" --sandbox invoices render INV-0000001 --format pdf --locale $locale \
    --output "invoice-$locale.pdf" >/dev/null
  pdftoppm -png -r 80 -f 1 -l 1 -singlefile "invoice-$locale.pdf" "$repo/docs/images/invoice-$locale"
done
echo "wrote docs/images/invoice-en.png and docs/images/invoice-fr.png"
