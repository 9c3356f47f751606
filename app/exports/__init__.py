"""Protected data export (SPEC §11): password-encrypted XLSX workbooks of a campaign, built in
the background, served once through an expiring link, recorded in the download history.

- service.py  requests (permission through tenancy's access functions), cancel, history, download, sweeper
- jobs.py     the background job (claims a request, writes the workbook, encrypts it, stores it)
- workbook.py the four sheets, streamed from the database in keyset chunks (XlsxWriter constant memory)
- crypto.py   ECMA-376 Agile encryption (msoffcrypto-tool's primitives), streamed through temp files
- storage.py  where encrypted files live: a directory (embedded, or shared) or PostgreSQL large objects
"""
