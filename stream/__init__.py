"""The Kafka stream: quote updates as snapshot events, produced, consumed and reassembled."""
