-- Outbox.append. ARGV: events...
check_data_version(true)
xadd(1)
return 1
