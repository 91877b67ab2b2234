# One date-and-time format on every admin page, lists and detail pages alike, in every language:
# ISO-like, sortable, as narrow as a list column needs (2026-12-02 18:27).
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = DATE_FORMAT
