-- The namespace's data version check (raises on a version this code does not know).
check_data_version(false)
return 1
