#!/bin/sh
# Renders docs/images/email-receipt-fr.png and email-payment-failed-en.png with the project's
# own commands: `billing emails preview` writes the HTML part exactly as the outbox stores it
# (sample data, the merchant identity below), WeasyPrint turns it into a one-page PDF and
# poppler's pdftoppm into a PNG. Needs: the package installed (.venv), poppler-utils
# (pdftoppm). Run from the repository root:
#   sh docs/images/make-email-png.sh
set -eu
repo=$(pwd)
billing="$repo/.venv/bin/billing"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export BILLING_MERCHANT_NAME="Maple Cloud"
export BILLING_MERCHANT_LEGAL_NAME="Maple Cloud Software Inc."
export BILLING_MERCHANT_ADDRESS='400 rue Saint-Paul Ouest\nMontréal QC  H2Y 2A6\nCanada'
export BILLING_MERCHANT_EMAIL="billing@maplecloud.example"
# The page is the width of a mail client's reading pane; the email itself is 600 px wide.
printf '@page { size: 640px 860px; margin: 0; }\n' > page.css
shot() {  # kind locale name
  "$billing" emails preview "$1" --locale "$2" --format html --output "$3.html" >/dev/null
  "$repo/.venv/bin/weasyprint" -s page.css "$3.html" "$3.pdf"
  pdftoppm -png -r 96 -f 1 -l 1 -singlefile "$3.pdf" "$repo/docs/images/$3"
}
shot payment_succeeded fr email-receipt-fr
shot payment_failed en email-payment-failed-en
echo "wrote docs/images/email-receipt-fr.png and docs/images/email-payment-failed-en.png"
