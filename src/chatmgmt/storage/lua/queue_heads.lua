-- QueueStore.heads. ARGV: escaped queue names. Reply: per queue what queue_head answers.
return queue_heads(ARGV)
