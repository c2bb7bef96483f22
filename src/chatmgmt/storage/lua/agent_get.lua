-- AgentStore.get. ARGV: escaped id. Reply: the agent reply, or nil.
check_data_version(false)
return agent_reply(P .. ':ag:' .. ARGV[1])
