package keyring

// tooLarge reports whether value exceeds the Windows Credential Manager's
// blob limit of 2560 bytes (CRED_MAX_CREDENTIAL_BLOB_SIZE).
func tooLarge(_, _, value string) (int, bool) {
	const max = 2560
	return max, len(value) > max
}
